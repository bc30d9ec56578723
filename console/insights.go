package console

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn"
)

// The Insights view (/console/insights): trends and unique-user charts, a
// funnel builder with bars (a step's examples link to their journeys), a
// retention table and top values, for one range chosen in a GET form.
// Everything is rendered on the server from cairn.Insights; the page needs
// no script beyond the shared bar widths.

// insightsData is the Insights page.
type insightsData struct {
	Available bool
	// The form's values.
	From, To, Interval, Steps, Within, Cohort, Return, TopType, TopField string
	Intervals                                                            []string

	Trends      *multiChart
	TrendTotals []cairn.TrendSeries
	Users       *multiChart
	UsersError  float64
	Funnel      *cairn.Funnel
	FunnelRows  []funnelRow
	Selected    *funnelRow
	Retention   []retentionRow
	RetentionN  int
	Top         *cairn.TopValues
	TopMax      int64
	Errors      []string
}

// funnelRow is one step's bar.
type funnelRow struct {
	Index                int
	Label                string
	Users                int64
	First, Previous, Pct string
	Median               string
	Link                 string
	Examples             []string
}

// multiChart is an inline SVG line chart of several count series over the
// same buckets, with its legend.
type multiChart struct {
	SVG        template.HTML
	Top        int64
	Start, End string
	Legend     []legendItem
}

type legendItem struct {
	Name   string
	Total  int64
	Swatch template.HTML
}

// palette colours the series (SVG presentation attributes: the console's
// CSP forbids inline styles, not these).
var palette = []string{"#2f6fdb", "#d9822b", "#2e9e5b", "#c23c5a", "#7a5cc7", "#6b7785"}

// maxChartSeries is the most series a chart draws (the largest totals).
const maxChartSeries = 6

func newMultiChart(names []string, series [][]int64, totals []int64, start, end string) *multiChart {
	c := &multiChart{Start: start, End: end}
	var peak int64
	for _, s := range series {
		for _, v := range s {
			peak = max(peak, v)
		}
	}
	c.Top = int64(niceCeil(float64(peak)))
	const w, h, pad = 720.0, 160.0, 4.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" preserveAspectRatio="none" role="img" aria-label="%s">`, w, h,
		template.HTMLEscapeString(strings.Join(names, ", ")))
	fmt.Fprintf(&b, `<line x1="0" y1="%g" x2="%g" y2="%g" class="grid"/><line x1="0" y1="%g" x2="%g" y2="%g" class="grid"/>`, pad, w, pad, h/2, w, h/2)
	for i, s := range series {
		col := palette[i%len(palette)]
		b.WriteString(`<polyline fill="none" stroke-width="1.8" vector-effect="non-scaling-stroke" stroke="` + col + `" points="`)
		for j, v := range s {
			x := pad + (w-2*pad)*float64(j)/float64(max(1, len(s)-1))
			y := h - pad - (h-2*pad)*float64(v)/float64(c.Top)
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64))
		}
		b.WriteString(`"/>`)
		c.Legend = append(c.Legend, legendItem{Name: names[i], Total: totals[i],
			Swatch: template.HTML(`<svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" rx="2" fill="` + col + `"/></svg>`)}) //nolint:gosec // a fixed colour
	}
	b.WriteString(`</svg>`)
	c.SVG = template.HTML(b.String()) //nolint:gosec // built from numbers, fixed colours and an escaped label
	return c
}

// parseStep parses a funnel step of the form: "type" or
// "type[field=value]".
func parseStep(s string) (cairn.FunnelStep, bool) {
	s = strings.TrimSpace(s)
	typ, rest, found := strings.Cut(s, "[")
	st := cairn.FunnelStep{Type: strings.TrimSpace(typ)}
	if found {
		cond, ok := strings.CutSuffix(rest, "]")
		k, val, ok2 := strings.Cut(cond, "=")
		if !ok || !ok2 || strings.TrimSpace(k) == "" {
			return st, false
		}
		st.Where = map[string]string{strings.TrimSpace(k): strings.TrimSpace(val)}
	}
	return st, st.Type != ""
}

func stepLabel(st cairn.FunnelStep) string {
	l := st.Type
	for k, v := range st.Where {
		l += "[" + k + "=" + v + "]"
	}
	return l
}

func formatSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	if d < time.Minute {
		return strconv.FormatFloat(s, 'f', 1, 64) + " s"
	}
	return d.String()
}

// insightsPage serves /console/insights.
func (c *Console) insightsPage(_ http.ResponseWriter, r *http.Request, v *view) (string, int, error) {
	q := r.URL.Query()
	get := func(name, def string) string {
		if s := strings.TrimSpace(q.Get(name)); s != "" {
			return s
		}
		return def
	}
	today := c.cfg.Now().UTC().Truncate(24 * time.Hour)
	d := insightsData{
		Available: c.cfg.Insights != nil,
		From:      get("from", today.AddDate(0, 0, -6).Format(time.DateOnly)),
		To:        get("to", today.Format(time.DateOnly)),
		Interval:  get("interval", "day"),
		Steps:     get("steps", "page_view, add_to_cart, purchase"),
		Within:    get("within", "1h"),
		Cohort:    get("cohort", "session_start"),
		Return:    get("return", cairn.AnyEventType),
		TopType:   get("topType", "page_view"),
		TopField:  get("field", "url"),
		Intervals: []string{"hour", "day", "week", "month"},
	}
	v.Title, v.Nav, v.Data = "Insights", "insights", &d
	if !d.Available {
		return "insights", http.StatusOK, nil
	}
	fail := func(what string, err error) { d.Errors = append(d.Errors, what+": "+cairn.ErrorMessage(err)) }
	from, err1 := time.Parse(time.DateOnly, d.From)
	to, err2 := time.Parse(time.DateOnly, d.To)
	if err1 != nil || err2 != nil {
		d.Errors = append(d.Errors, "from and to must be dates (YYYY-MM-DD)")
		return "insights", http.StatusBadRequest, nil
	}
	to = to.Add(24*time.Hour - time.Millisecond) // the whole last day
	ctx := r.Context()
	iv := cairn.Interval(d.Interval)

	if tr, err := c.cfg.Insights.Trends(ctx, cairn.TrendsQuery{From: from, To: to, Interval: iv}); err != nil {
		fail("Trends", err)
	} else {
		s := slices.Clone(tr.Series)
		slices.SortStableFunc(s, func(a, b cairn.TrendSeries) int { return int(b.Total - a.Total) })
		d.TrendTotals = s
		s = s[:min(len(s), maxChartSeries)]
		var names []string
		var series [][]int64
		var totals []int64
		for _, ser := range s {
			names, totals = append(names, ser.Type), append(totals, ser.Total)
			pts := make([]int64, len(ser.Points))
			for i, p := range ser.Points {
				pts[i] = p.Count
			}
			series = append(series, pts)
		}
		bs := iv.Buckets(from, to)
		d.Trends = newMultiChart(names, series, totals, bucketLabel(iv, bs[0]), bucketLabel(iv, bs[len(bs)-1]))
	}

	uiv := iv
	if uiv == cairn.IntervalHour {
		uiv = cairn.IntervalDay
	}
	if u, err := c.cfg.Insights.UniqueUsers(ctx, cairn.UsersQuery{From: from, To: to, Interval: uiv}); err != nil {
		fail("Unique users", err)
	} else {
		pts := make([]int64, len(u.Points))
		var peak int64
		for i, p := range u.Points {
			pts[i] = p.Users
			peak = max(peak, p.Users)
		}
		d.UsersError = u.RelativeError * 100
		d.Users = newMultiChart([]string{"users per " + string(uiv) + " (peak)"}, [][]int64{pts}, []int64{peak},
			bucketLabel(uiv, u.Points[0].T), bucketLabel(uiv, u.Points[len(u.Points)-1].T))
	}

	c.funnel(r, &d, from, to, fail)

	riv := iv
	if riv != cairn.IntervalWeek {
		riv = cairn.IntervalDay
	}
	if ret, err := c.cfg.Insights.Retention(ctx, cairn.RetentionQuery{Cohort: d.Cohort, Return: d.Return, From: from, To: to, Interval: riv}); err != nil {
		fail("Retention", err)
	} else {
		d.Retention, d.RetentionN = retentionRows(riv, ret), len(ret.Cohorts)
	}

	if top, err := c.cfg.Insights.Top(ctx, cairn.TopQuery{Type: d.TopType, Field: d.TopField, From: from, To: to, Limit: 15}); err != nil {
		fail("Top values", err)
	} else {
		d.Top = top
		for _, tv := range top.Values {
			d.TopMax = max(d.TopMax, tv.Count)
		}
	}
	status := http.StatusOK
	if len(d.Errors) > 0 {
		status = http.StatusBadRequest
	}
	return "insights", status, nil
}

// funnel computes the page's funnel and its rows.
func (c *Console) funnel(r *http.Request, d *insightsData, from, to time.Time, fail func(string, error)) {
	var steps []cairn.FunnelStep
	for s := range strings.SplitSeq(d.Steps, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		st, ok := parseStep(s)
		if !ok {
			d.Errors = append(d.Errors, fmt.Sprintf("Funnel: cannot read the step %q (write type or type[field=value])", strings.TrimSpace(s)))
			return
		}
		steps = append(steps, st)
	}
	within, err := cairn.ParseWindow(d.Within)
	if err != nil {
		fail("Funnel", err)
		return
	}
	f, err := c.cfg.Insights.Funnel(r.Context(), cairn.FunnelQuery{Steps: steps, Within: within, From: from, To: to})
	if err != nil {
		fail("Funnel", err)
		return
	}
	d.Funnel = f
	selected, _ := strconv.Atoi(r.URL.Query().Get("step"))
	var first int64
	if len(f.Steps) > 0 {
		first = f.Steps[0].Users
	}
	for i, st := range f.Steps {
		row := funnelRow{Index: i + 1, Label: stepLabel(steps[i]), Users: st.Users,
			First:    strconv.FormatFloat(st.ConversionFromFirst*100, 'f', 1, 64),
			Previous: strconv.FormatFloat(st.ConversionFromPrevious*100, 'f', 1, 64),
			Pct:      "0", Median: "—", Examples: st.ExampleUsers}
		if first > 0 {
			row.Pct = strconv.FormatFloat(float64(st.Users)*100/float64(first), 'f', 1, 64)
		}
		if st.MedianSecondsFromPrevious != nil {
			row.Median = formatSeconds(*st.MedianSecondsFromPrevious)
		}
		u := *r.URL
		qs := u.Query()
		qs.Set("step", strconv.Itoa(i+1))
		row.Link = "/console/insights?" + qs.Encode() + "#funnel"
		d.FunnelRows = append(d.FunnelRows, row)
	}
	if selected >= 1 && selected <= len(d.FunnelRows) {
		d.Selected = &d.FunnelRows[selected-1]
	}
}

// bucketLabel names a bucket on a chart axis.
func bucketLabel(iv cairn.Interval, t time.Time) string {
	switch iv {
	case cairn.IntervalHour:
		return t.Format("Jan 2 15:04")
	case cairn.IntervalMonth:
		return t.Format("Jan 2006")
	}
	return t.Format("Mon Jan 2")
}

// retentionRow is one cohort of the retention table.
type retentionRow struct {
	T     string
	Users int64
	Cells []retentionCell
	Pad   []struct{} // empty cells after the last bucket, to fill the row
}

type retentionCell struct {
	N   int64
	Pct string // "" for an empty cohort
}

func retentionRows(iv cairn.Interval, r *cairn.Retention) []retentionRow {
	rows := make([]retentionRow, 0, len(r.Cohorts))
	for _, co := range r.Cohorts {
		row := retentionRow{T: bucketLabel(iv, co.T), Users: co.Users}
		for _, n := range co.Returned {
			cell := retentionCell{N: n}
			if co.Users > 0 {
				cell.Pct = strconv.FormatFloat(float64(n)*100/float64(co.Users), 'f', 0, 64) + " %"
			}
			row.Cells = append(row.Cells, cell)
		}
		row.Pad = make([]struct{}, len(r.Cohorts)-len(row.Cells))
		rows = append(rows, row)
	}
	return rows
}
