/**
 * The one function that makes a connection URL printable. Every URL capflow logs or prints (the
 * configured Redis, the embedded one, S3 endpoints) goes through it.
 *
 * It must hold for every form ioredis accepts, not only `redis://user:pass@host`: the password in
 * the query (`redis://h:6379?password=...`, which ioredis honours like any option), passwords with
 * `@` (WHATWG takes the last `@`), an unencoded `/` (ioredis refuses the URL, but it is still printed
 * in the error), protocol-relative `//:pass@h`, bare `:pass@h:6379`, and unix sockets
 * (`/tmp/redis.sock?password=...`). When unsure it hides more: never a secret, sometimes a host.
 */
const SECRET_PARAM = /pass|secret|token|key|auth|credential/i;

export function redactUrl(raw: string): string {
  // Query options whose name says secret: `password`, `sentinelPassword`, `accessKey`...
  let out = raw.replace(/([?&;])([^=&#?;]*)=([^&#;]*)/g, (all, sep: string, name: string) =>
    SECRET_PARAM.test(name) ? `${sep}${name}=[redacted]` : all,
  );
  // Userinfo: everything between the scheme (or `//`, or the start) and the last `@`.
  const scheme = /^([a-z][a-z0-9+.-]*:)?\/\//i.exec(out)?.[0] ?? "";
  const rest = out.slice(scheme.length);
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(":");
    // `user:pass` keeps the user; a lone `x@` may be a password (older clients read it so).
    const kept = colon > 0 && !/[/?#]/.test(userinfo.slice(0, colon)) ? userinfo.slice(0, colon) : "";
    out = `${scheme}${kept}:[redacted]@${rest.slice(at + 1)}`;
  }
  return out;
}
