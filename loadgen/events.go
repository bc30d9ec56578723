package loadgen

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// eventTypes are the ten types Cairn accepts, with weights that look like
// real product traffic: mostly page views and clicks, few purchases.
var eventTypes = []struct {
	name   string
	weight int
}{
	{"page_view", 35}, {"button_click", 20}, {"search", 10}, {"add_to_cart", 8},
	{"session_start", 6}, {"form_submit", 5}, {"video_play", 5}, {"video_pause", 4},
	{"remove_from_cart", 4}, {"purchase", 3},
}

var typeTable = func() []string {
	var t []string
	for _, e := range eventTypes {
		for range e.weight {
			t = append(t, e.name)
		}
	}
	return t
}()

var (
	pages    = []string{"/", "/home", "/products", "/products/laptop-pro-14", "/products/headphones-x2", "/cart", "/checkout", "/account", "/blog/launch", "/pricing"}
	queries  = []string{"laptop", "wireless headphones", "usb-c cable", "4k monitor", "mechanical keyboard", "gift card", "running shoes", "coffee grinder"}
	buttons  = []string{"add-to-cart", "buy-now", "subscribe", "share", "wishlist", "menu", "close-banner"}
	forms    = []string{"newsletter", "contact", "checkout", "login", "feedback"}
	referrer = []string{"https://www.google.com/", "https://news.example.org/", "", "https://t.co/x"}
)

// generator builds request bodies; each worker owns one.
type generator struct {
	rng      *rand.Rand
	runID    string
	users    int
	sessions int
	prefix   string
	buf      []byte
}

func newGenerator(seed uint64, worker int, runID, userPrefix string, users, sessions int) *generator {
	return &generator{
		rng:      rand.New(rand.NewPCG(seed, uint64(worker)+1)),
		runID:    runID,
		users:    users,
		sessions: sessions,
		prefix:   userPrefix,
	}
}

// userID returns the id of user n.
func userID(prefix string, n int) string { return prefix + strconv.Itoa(n) }

// eventID returns the client-side id of event j of request i.
func eventID(runID string, i int64, j int) string {
	return runID + "-" + strconv.FormatInt(i, 36) + "-" + strconv.Itoa(j)
}

// Ack is one acknowledged event: its user and client-side eventId.
type Ack struct {
	UserID  string
	EventID string
}

// body returns the JSON body of request i with n events (one object when n
// is 1, an array otherwise) and appends each event's user and id to ids
// if record is set. The returned slice is reused by the next call.
func (g *generator) body(i int64, n int, now time.Time, record bool, ids []Ack) ([]byte, []Ack) {
	b := g.buf[:0]
	if n != 1 {
		b = append(b, '[')
	}
	ms := now.UnixMilli()
	for j := range n {
		if j > 0 {
			b = append(b, ',')
		}
		u := g.rng.IntN(g.users)
		user := userID(g.prefix, u)
		id := eventID(g.runID, i, j)
		typ := typeTable[g.rng.IntN(len(typeTable))]
		b = append(b, `{"eventId":"`...)
		b = append(b, id...)
		b = append(b, `","userId":"`...)
		b = append(b, user...)
		b = append(b, `","sessionId":"`...)
		b = append(b, user...)
		b = append(b, "-s"...)
		b = strconv.AppendInt(b, int64(g.rng.IntN(g.sessions)), 10)
		b = append(b, `","type":"`...)
		b = append(b, typ...)
		b = append(b, `","occurredAt":`...)
		b = strconv.AppendInt(b, ms-int64(g.rng.IntN(1000)), 10)
		b = append(b, `,"payload":`...)
		b = g.payload(b, typ)
		b = append(b, '}')
		if record {
			ids = append(ids, Ack{UserID: user, EventID: id})
		}
	}
	if n != 1 {
		b = append(b, ']')
	}
	g.buf = b
	return b, ids
}

func (g *generator) pick(s []string) string { return s[g.rng.IntN(len(s))] }

// payload appends a plausible payload object for an event of type typ.
func (g *generator) payload(b []byte, typ string) []byte {
	str := func(b []byte, k, v string) []byte {
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":"`...)
		b = append(b, v...)
		return append(b, '"')
	}
	num := func(b []byte, k string, v int) []byte {
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":`...)
		return strconv.AppendInt(b, int64(v), 10)
	}
	product := func(b []byte) []byte {
		return str(b, "productId", "sku-"+strconv.Itoa(1000+g.rng.IntN(9000)))
	}
	b = append(b, '{')
	switch typ {
	case "page_view":
		b = str(b, "url", g.pick(pages))
		b = append(b, ',')
		b = str(b, "referrer", g.pick(referrer))
		b = append(b, ',')
		b = num(b, "loadTimeMs", 50+g.rng.IntN(1500))
	case "search":
		b = str(b, "query", g.pick(queries))
		b = append(b, ',')
		b = num(b, "results", g.rng.IntN(200))
	case "purchase":
		b = str(b, "orderId", "ord-"+strconv.FormatUint(g.rng.Uint64()>>20, 36))
		b = append(b, ',')
		b = num(b, "amountCents", 500+g.rng.IntN(200000))
		b = append(b, ',')
		b = str(b, "currency", "EUR")
		b = append(b, ',')
		b = num(b, "items", 1+g.rng.IntN(5))
	case "add_to_cart", "remove_from_cart":
		b = product(b)
		b = append(b, ',')
		b = num(b, "quantity", 1+g.rng.IntN(3))
		b = append(b, ',')
		b = num(b, "priceCents", 199+g.rng.IntN(50000))
	case "button_click":
		b = str(b, "buttonId", g.pick(buttons))
		b = append(b, ',')
		b = str(b, "page", g.pick(pages))
	case "form_submit":
		b = str(b, "formId", g.pick(forms))
		b = append(b, `,"valid":true`...)
	case "video_play", "video_pause":
		b = str(b, "videoId", "vid-"+strconv.Itoa(g.rng.IntN(500)))
		b = append(b, ',')
		b = num(b, "positionSec", g.rng.IntN(3600))
	case "session_start":
		b = str(b, "userAgent", "Mozilla/5.0 (X11; Linux x86_64)")
		b = append(b, ',')
		b = str(b, "landingPage", g.pick(pages))
	}
	return append(b, '}')
}

// segmentBody returns the body of request i as a Segment batch
// ({"batch":[...]}) of n track messages carrying the same kind of events
// as body: the event type as the track event name, the payload as its
// properties, the eventId as its messageId and the session in
// context.sessionId. The returned slice is reused by the next call.
func (g *generator) segmentBody(i int64, n int, now time.Time) []byte {
	b := append(g.buf[:0], `{"batch":[`...)
	ms := now.UnixMilli()
	for j := range n {
		if j > 0 {
			b = append(b, ',')
		}
		u := g.rng.IntN(g.users)
		user := userID(g.prefix, u)
		typ := typeTable[g.rng.IntN(len(typeTable))]
		b = append(b, `{"type":"track","messageId":"`...)
		b = append(b, eventID(g.runID, i, j)...)
		b = append(b, `","userId":"`...)
		b = append(b, user...)
		b = append(b, `","event":"`...)
		b = append(b, typ...)
		b = append(b, `","timestamp":"`...)
		b = time.UnixMilli(ms-int64(g.rng.IntN(1000))).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
		b = append(b, `","context":{"sessionId":"`...)
		b = append(b, user...)
		b = append(b, "-s"...)
		b = strconv.AppendInt(b, int64(g.rng.IntN(g.sessions)), 10)
		b = append(b, `"},"properties":`...)
		b = g.payload(b, typ)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	g.buf = b
	return b
}
