package console

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
)

// chart is an inline SVG line chart of a rate series, rendered on the
// server: the page needs no charting script.
type chart struct {
	Title string
	// Peak and Avg are in events per second.
	Peak, Avg, Last float64
	SVG             template.HTML
	Start, End      string // axis labels
}

// rateChart draws counts (one per bucket of bucketSeconds, oldest first)
// as events per second, averaged into at most maxPoints points.
func rateChart(title string, counts []int64, bucketSeconds float64, maxPoints int, start, end string) chart {
	group := max(1, (len(counts)+maxPoints-1)/maxPoints)
	var pts []float64
	var total int64
	for i := 0; i < len(counts); i += group {
		var sum int64
		j := min(len(counts), i+group)
		for _, c := range counts[i:j] {
			sum += c
		}
		total += sum
		pts = append(pts, float64(sum)/(float64(j-i)*bucketSeconds))
	}
	c := chart{Title: title, Start: start, End: end}
	for _, p := range pts {
		c.Peak = max(c.Peak, p)
	}
	if len(counts) > 0 {
		c.Avg = float64(total) / (float64(len(counts)) * bucketSeconds)
	}
	if len(pts) > 0 {
		c.Last = pts[len(pts)-1]
	}
	const w, h, pad = 720.0, 160.0, 4.0
	top := niceCeil(c.Peak)
	var line strings.Builder
	for i, p := range pts {
		x := pad + (w-2*pad)*float64(i)/float64(max(1, len(pts)-1))
		y := h - pad - (h-2*pad)*p/top
		if i > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64))
	}
	area := fmt.Sprintf("%.1f,%.1f %s %.1f,%.1f", pad, h-pad, line.String(), w-pad, h-pad)
	svg := fmt.Sprintf(`<svg class="chart" viewBox="0 0 %g %g" preserveAspectRatio="none" role="img" aria-label="%s: peak %s events/s">`+
		`<line x1="0" y1="%g" x2="%g" y2="%g" class="grid"/><line x1="0" y1="%g" x2="%g" y2="%g" class="grid"/>`+
		`<polygon points="%s" class="area"/><polyline points="%s" class="line"/></svg>`,
		w, h, template.HTMLEscapeString(title), formatRate(c.Peak),
		pad, w, pad, h/2, w, h/2, area, line.String())
	c.SVG = template.HTML(svg) //nolint:gosec // built from numbers and an escaped title only
	return c
}

// TopLabel is the value of the chart's top grid line.
func (c chart) TopLabel() string { return formatRate(niceCeil(c.Peak)) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// formatRate writes an events/s figure.
func formatRate(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return formatNum(int64(v + 0.5))
}

// sparkline is a tiny inline SVG of a source's recent rate, with its
// figures in events per second.
type sparkline struct {
	SVG template.HTML
	// Last is the rate over the newest minute, Peak the highest step.
	Last, Peak float64
}

// sourceSparkline draws counts (one per step of stepSeconds, oldest first)
// as a 120×24 line.
func sourceSparkline(counts []int64, stepSeconds float64) sparkline {
	var sp sparkline
	perMinute := max(1, int(60/stepSeconds))
	var lastSum int64
	for i, c := range counts {
		sp.Peak = max(sp.Peak, float64(c)/stepSeconds)
		if i >= len(counts)-perMinute {
			lastSum += c
		}
	}
	if n := min(perMinute, len(counts)); n > 0 {
		sp.Last = float64(lastSum) / (float64(n) * stepSeconds)
	}
	const w, h, pad = 120.0, 24.0, 2.0
	top := niceCeil(sp.Peak)
	var line strings.Builder
	for i, c := range counts {
		x := pad + (w-2*pad)*float64(i)/float64(max(1, len(counts)-1))
		y := h - pad - (h-2*pad)*float64(c)/stepSeconds/top
		if i > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64))
	}
	svg := fmt.Sprintf(`<svg class="spark" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="events/s over the last %d minutes, peak %s">`+
		`<polyline points="%s" class="line"/></svg>`,
		w, h, w, h, int(float64(len(counts))*stepSeconds/60+0.5), formatRate(sp.Peak), line.String())
	sp.SVG = template.HTML(svg) //nolint:gosec // built from numbers only
	return sp
}
