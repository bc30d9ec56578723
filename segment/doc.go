// Package segment decodes requests of the Segment HTTP Tracking API (the
// wire protocol spoken by analytics.js / @segment/analytics-next,
// @segment/analytics-node, analytics-go, RudderStack's SDKs, ...) into
// Cairn events. It has no HTTP handler: the http package calls Decode with
// the request body and the call named by the route.
//
// # Calls
//
// Decode takes the call as "batch" or one of "track", "identify", "page",
// "screen", "group", "alias", or the short forms analytics.js posts to
// (t, i, p, s, g, a, and b for batch). A batch body is
// {"batch":[…], "context", "integrations", "sentAt", "writeKey"}; other
// top-level fields (analytics-go's batch messageId) are ignored. A single
// call's body is one message; if it carries a "type", it must match the
// call.
//
// # Mapping to Cairn's event
//
//   - userId ← userId, else anonymousId (strings, or numbers taken as their
//     JSON text; trimmed; at most cairn.MaxIDBytes). Neither → the message
//     is rejected with reason "no_user_anon_id".
//   - type ← the event name for track (1–MaxEventNameLen characters). A
//     track name that starts with "$" gets one more "$" in front ("$foo" is
//     stored as "$$foo"), so a stored type with exactly one leading "$" is
//     always one of the reserved names the other calls get: $identify,
//     $page, $screen, $group, $alias. TrackType and TrackName convert.
//   - payload ← the message as received, with the batch-level context and
//     integrations merged in (the message's own keys win, key by key, one
//     level deep) and writeKey removed. Raw client timestamps (timestamp,
//     originalTimestamp, sentAt) stay in it. A request with a member name
//     given twice in any object is malformed JSON (400), as for POST /events.
//   - sessionId ← context.sessionId, else
//     integrations["Actions Amplitude"].session_id (string or number), else
//     "" (the caller derives sessions later).
//   - occurredAt ← receivedAt − (sentAt − t), where t is originalTimestamp,
//     else timestamp, and sentAt is the message's, else the batch's: Segment's
//     clock-skew correction. Only t → t; no t → receivedAt. Each time is
//     taken at millisecond precision (timestamps may have 0–9 fractional
//     digits) before the arithmetic. A result more than Options.MaxFuture
//     after receivedAt (a wrong client clock with no sentAt to correct it)
//     becomes receivedAt; one before 1970 or after 9999 rejects the message
//     ("invalid_timestamp").
//   - eventId ← messageId when it is a valid Cairn eventId (see
//     cairn.ValidateEventID); any other messageId (too long, other
//     characters) becomes "m-" and the first 20 bytes of its SHA-256 in hex,
//     so that retries of the same message still deduplicate. No messageId
//     → "" (the ingester assigns one).
//
// # Limits and errors
//
// As Segment: 32 KiB per message (and per single-call body), 500 KiB per
// batch request, 2,500 messages per batch. A batch item's size counts the
// batch-level context and integrations too, since they are merged into its
// payload: what Cairn stores per event stays within the limit, and a large
// batch context cannot be copied into thousands of events. An oversize request is a
// cairn.ETOOLARGE error, a body that is not a JSON object (malformed JSON,
// invalid UTF-8) or a batch without a "batch" array is cairn.EINVALID;
// the HTTP layer answers both with 400. Problems with one message never sink
// the others: the message is listed in Request.Rejected with a reason (the
// Reason* constants) and the rest are accepted. Decode never panics.
//
// # Write keys
//
// Request.WriteKey is the body's write key: the batch-level "writeKey",
// else the first message's. A message carrying a different write key is
// rejected ("write_key_mismatch"): one request speaks for one source.
// Choosing between this key and an HTTP Basic one is the caller's job (the
// tracking API takes Basic auth first, then the body's key).
//
// # Not supported
//
// Destinations, the settings CDN (cdn.segment.com), remote metrics (/m),
// Personas/Profiles, replays, the Object API, and the "context.traits"
// semantics of identify beyond keeping them in the payload. Every call
// is stored as an event; identity stitching (identify/alias linking
// anonymous ids to users, identify traits) is done by the stores from the
// event's AnonymousID and its $identify payload's traits (see the root
// package's identity.go).
package segment
