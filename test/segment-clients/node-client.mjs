// Sends Segment calls to Cairn with the real @segment/analytics-node SDK and
// reports, as JSON lines on stdout, what it sent: every HTTP request and
// response the SDK made (retries included), every call's delivery result,
// and at the end the messages (with their SDK-generated messageIds).
//
// Usage: node node-client.mjs PLAN_JSON
//   CAIRN_URL        Cairn's base URL (http://127.0.0.1:PORT)
//   CAIRN_WRITE_KEY  the source's write key
//   PLAN_JSON        {"flushAt": n, "maxRetries": n, "sequentialBatches": bool,
//                     "calls": [{"method": "track", "arg": {...}}, ...]}
//                    sequentialBatches: make the next flushAt calls only once the
//                    previous batch is delivered (one batch in flight at a time).
//                    method is track, identify, page, screen, group or alias; arg is
//                    what the SDK method takes (userId/anonymousId, event, properties, ...).
//
// Lines: {"kind":"request","at":"…","attempt":n,"retryCount":"…","messageIds":[…],"sentAt":"…"}
//        {"kind":"response","at":"…","status":n,"retryAfter":"…","rateLimitReset":"…","messageIds":[…]}
//        {"kind":"delivered","index":i,"messageId":"…","error":"…"|null}
//        {"kind":"done","messages":[{"index","type","messageId","userId","anonymousId","event","timestamp","calledAt"}]}
// Run by cmd/cairn's TestE2ESegmentNode.
import { Analytics } from '@segment/analytics-node'

const plan = JSON.parse(process.argv[2] ?? '{}')
const host = process.env.CAIRN_URL
const writeKey = process.env.CAIRN_WRITE_KEY
if (!host || !writeKey || !Array.isArray(plan.calls)) {
  console.error('usage: CAIRN_URL=… CAIRN_WRITE_KEY=… node node-client.mjs \'{"calls":[…]}\'')
  process.exit(2)
}

const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')

const analytics = new Analytics({
  writeKey,
  host,
  flushAt: plan.flushAt ?? plan.calls.length,
  flushInterval: plan.flushInterval ?? 500,
  maxRetries: plan.maxRetries ?? 10,
  httpRequestTimeout: 20000,
})

let attempt = 0
analytics.on('http_request', (req) => {
  const body = JSON.parse(req.body)
  attempt++
  out({
    kind: 'request',
    at: new Date().toISOString(),
    attempt,
    url: req.url,
    retryCount: req.headers['X-Retry-Count'] ?? null,
    messageIds: body.batch.map((m) => m.messageId),
    sentAt: body.sentAt,
  })
})
analytics.on('http_response', (res) => {
  out({
    kind: 'response',
    at: new Date().toISOString(),
    status: res.status,
    retryAfter: res.headers['retry-after'] ?? null,
    rateLimitReset: res.headers['x-ratelimit-reset'] ?? null,
    messageIds: JSON.parse(res.body).batch.map((m) => m.messageId),
  })
})
analytics.on('error', (err) => {
  out({ kind: 'error', error: String(err?.reason ?? err?.message ?? err) })
})

const messages = []
const send = (call, index) =>
  new Promise((resolve) => {
    const calledAt = new Date().toISOString()
    const fn = analytics[call.method]
    if (typeof fn !== 'function') throw new Error(`unknown method ${call.method}`)
    fn.call(analytics, call.arg, (err, ctx) => {
      const e = ctx?.event ?? {}
      messages[index] = {
        index,
        type: e.type,
        messageId: e.messageId,
        userId: e.userId ?? null,
        anonymousId: e.anonymousId ?? null,
        event: e.event ?? null,
        timestamp: e.timestamp instanceof Date ? e.timestamp.toISOString() : (e.timestamp ?? null),
        calledAt,
      }
      out({ kind: 'delivered', index, messageId: e.messageId, error: err ? String(err.reason ?? err.message ?? err) : null })
      resolve()
    })
  })

if (plan.sequentialBatches) {
  // One batch in flight at a time: the next flushAt calls are made once
  // the previous batch is delivered.
  const size = plan.flushAt ?? plan.calls.length
  for (let i = 0; i < plan.calls.length; i += size) {
    await Promise.all(plan.calls.slice(i, i + size).map((c, j) => send(c, i + j)))
  }
} else {
  await Promise.all(plan.calls.map(send))
}
await analytics.closeAndFlush({ timeout: 30000 })
out({ kind: 'done', messages })
