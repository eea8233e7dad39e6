// Acts as the user of the lqx SSO tests in front of the provider's own HTML pages: fetches
// them, fills in and submits their forms, follows redirects, keeps the cookies.
//
//   node drive.mjs device ISSUER USER_CODE LOGIN [--abort]   approve (or abort) a device code
//   node drive.mjs browser AUTHORIZE_URL LOGIN               log in; GETs the final redirect
//                                                            (the CLI's loopback callback)
//   node drive.mjs token ISSUER CLIENT_ID LOGIN              a whole device flow; prints the
//                                                            token response (JSON)
const [mode, ...args] = process.argv.slice(2);
const cookies = new Map();

async function request(url, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1));
  }
  return res;
}

const decode = (s) => s.replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCharCode(parseInt(h, 16)))
  .replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\s${name}="([^"]*)"`));
  return m ? decode(m[1]) : undefined;
};

// The page's first form: its action and named fields with their values.
function form(html, base) {
  const m = html.match(/<form\b[^>]*>[\s\S]*?<\/form>/i);
  if (!m) throw new Error(`no form on the page:\n${html.slice(0, 2000)}`);
  const fields = {};
  for (const tag of m[0].match(/<input\b[^>]*>/gi) || []) {
    const name = attr(tag, 'name');
    if (name) fields[name] = attr(tag, 'value') ?? '';
  }
  return { action: new URL(attr(m[0], 'action') || base, base).href, fields };
}

// Follows redirects and submits each form (with `fill` applied) until a page without a form,
// or a redirect leaving the provider (returned, not followed).
async function browse(url, fill, origin) {
  let res = await request(url);
  for (let step = 0; step < 20; step += 1) {
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url).href;
      if (new URL(next).origin !== origin) return { redirect: next };
      url = next;
      res = await request(url);
      continue;
    }
    const html = await res.text();
    // A page without a form, or one showing an error (its form would only start over), ends it.
    if (!/<form\b/i.test(html) || /class="red"/.test(html)) return { status: res.status, html };
    const f = form(html, url);
    Object.assign(f.fields, fill(f.fields));
    url = f.action;
    res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(f.fields).toString(),
    });
  }
  throw new Error('too many steps');
}

const filler = (login, userCode, abort) => (fields) => {
  if ('prompt' in fields && fields.prompt === 'login') return { login, password: 'any-password' };
  if ('user_code' in fields && !fields.user_code) return { user_code: userCode };
  if ('confirm' in fields && abort) {
    delete fields.confirm;
    return { abort: 'yes' };
  }
  return {};
};

async function approve(issuer, userCode, login, abort) {
  const out = await browse(`${issuer}/device`, filler(login, userCode, abort), new URL(issuer).origin);
  const text = (out.html || '').replace(/<[^>]+>/g, ' ');
  if (abort ? !/interrupted|aborted/i.test(text) : !/success|Sign-in Success/i.test(text)) {
    throw new Error(`device approval did not finish: ${text.replace(/\s+/g, ' ').slice(0, 500)}`);
  }
}

if (mode === 'device') {
  const [issuer, userCode, login] = args;
  await approve(issuer, userCode, login, args.includes('--abort'));
} else if (mode === 'browser') {
  const [authorizeUrl, login] = args;
  const out = await browse(authorizeUrl, filler(login), new URL(authorizeUrl).origin);
  if (!out.redirect) throw new Error(`login did not redirect back: ${(out.html || '').slice(0, 500)}`);
  const res = await fetch(out.redirect);
  console.log(`${res.status} ${await res.text()}`);
} else if (mode === 'token') {
  const [issuer, clientId, login] = args;
  const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const form = (o) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(o).toString(),
  });
  const dev = await (await fetch(meta.device_authorization_endpoint,
    form({ client_id: clientId, scope: 'openid profile email groups' }))).json();
  await approve(issuer, dev.user_code, login, false);
  const tok = await fetch(meta.token_endpoint, form({
    client_id: clientId,
    grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
    device_code: dev.device_code,
  }));
  console.log(JSON.stringify(await tok.json()));
} else {
  console.error('usage: node drive.mjs device|browser|token ...');
  process.exit(2);
}
