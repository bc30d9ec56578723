// Drives a running Cairn with the official better-auth client, as a browser
// frontend on a trusted origin would: sign up, read the session, read a
// protected journey with the session cookie, sign out, sign in, sign out.
// Exits non-zero on the first mismatch.
//
//   CAIRN_URL=http://127.0.0.1:3000 CAIRN_ORIGIN=http://localhost:3000 node client.mjs
import { createAuthClient } from "better-auth/client";

const baseURL = process.env.CAIRN_URL;
const origin = process.env.CAIRN_ORIGIN || "http://localhost:3000";
if (!baseURL) {
  console.error("CAIRN_URL is not set");
  process.exit(2);
}

// A browser keeps cookies and sends Origin; Node's fetch does neither, so a
// small cookie jar and the Origin header stand in for the browser.
const jar = new Map();
let lastSetCookie = [];
async function browserFetch(input, init = {}) {
  const headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
  headers.set("origin", origin);
  if (jar.size > 0) {
    headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
  }
  const res = await fetch(input, { ...init, headers });
  lastSetCookie = res.headers.getSetCookie();
  for (const sc of lastSetCookie) {
    const [pair, ...attrs] = sc.split(";").map((s) => s.trim());
    const i = pair.indexOf("=");
    const name = pair.slice(0, i);
    const value = pair.slice(i + 1);
    if (value === "" || attrs.some((a) => /^max-age=0$/i.test(a))) jar.delete(name);
    else jar.set(name, value);
  }
  return res;
}

const client = createAuthClient({ baseURL, fetchOptions: { customFetchImpl: browserFetch } });

let step = 0;
function check(cond, what, detail) {
  step++;
  if (!cond) {
    console.error(`FAIL step ${step}: ${what}`);
    if (detail !== undefined) console.error(JSON.stringify(detail, null, 2));
    process.exit(1);
  }
  console.log(`ok ${step} - ${what}`);
}

const email = `Client-${Date.now()}@Example.com`;
const password = "correct-horse-9";

// Sign up.
let r = await client.signUp.email({ email, password, name: "Node Client" });
check(r.error === null, "sign-up succeeds", r.error);
check(r.data.user.email === email.toLowerCase(), "sign-up stores the email lowercased", r.data);
check(typeof r.data.token === "string" && r.data.token.length === 32, "sign-up returns a session token", r.data);
check(r.data.user.createdAt instanceof Date, "the client parses createdAt as a Date", r.data.user);
const userId = r.data.user.id;
check(lastSetCookie.some((c) => c.startsWith("better-auth.session_token=") && /HttpOnly/.test(c)), "sign-up sets the session cookie", lastSetCookie);

// Session.
r = await client.getSession();
check(r.error === null && r.data && r.data.user.id === userId, "get-session returns the signed-up user", r);
check(r.data.session.userId === userId && r.data.session.expiresAt instanceof Date, "get-session returns the session", r.data.session);

// A protected read with the session cookie, after posting an event.
const trackedUser = `node-${Date.now()}`;
let res = await fetch(`${baseURL}/events`, {
  method: "POST",
  headers: { "content-type": "application/json", origin: "https://shop.example" },
  body: JSON.stringify({ userId: trackedUser, sessionId: "s1", type: "page_view", payload: { url: "/home" } }),
});
check(res.status === 202, "POST /events is public (202)", { status: res.status, body: await res.text() });

let journey;
for (let i = 0; i < 100; i++) {
  res = await browserFetch(`${baseURL}/users/${trackedUser}/journey`);
  journey = await res.json();
  if (res.status !== 200 || journey.count > 0) break;
  await new Promise((ok) => setTimeout(ok, 100));
}
check(res.status === 200 && journey.count === 1 && journey.events[0].type === "page_view", "the journey is readable with the session cookie", journey);

res = await fetch(`${baseURL}/users/${trackedUser}/journey`);
check(res.status === 401, "the journey refuses a request without a session", { status: res.status });

// Sign out.
r = await client.signOut();
check(r.error === null && r.data.success === true, "sign-out succeeds", r);
r = await client.getSession();
check(r.error === null && r.data === null, "get-session is null after sign-out", r);
res = await browserFetch(`${baseURL}/users/${trackedUser}/journey`);
check(res.status === 401, "the journey refuses the signed-out client", { status: res.status });

// Sign in again, wrong then right.
r = await client.signIn.email({ email, password: "wrong-password-1" });
check(r.data === null && r.error && r.error.status === 401 && r.error.code === "INVALID_EMAIL_OR_PASSWORD", "a wrong password is refused", r.error);
r = await client.signIn.email({ email, password });
check(r.error === null && r.data.user.id === userId && r.data.redirect === false, "sign-in succeeds", r);
r = await client.getSession();
check(r.data && r.data.user.id === userId, "get-session after sign-in", r);
res = await browserFetch(`${baseURL}/users/${trackedUser}/journey`);
check(res.status === 200, "the journey is readable after sign-in", { status: res.status });
r = await client.signOut();
check(r.error === null && r.data.success === true, "final sign-out succeeds", r);

console.log(`all ${step} checks passed`);
