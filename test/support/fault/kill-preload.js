// Test-only preload (NODE_OPTIONS=--import, after preload.js): the process SIGKILLs itself at an exact
// point of its object-store writes, which a parent polling the store cannot hit (a small checkpoint is
// written in milliseconds). It wraps node:fs/promises, which LocalStore uses to commit every object
// (rename/link into place); no role code is touched.
//   CAPFLOW_TEST_KILL_BEFORE_COMMIT=<text>  SIGKILL just before an object whose path contains <text> is
//                                           committed: the objects before it are in place, it and the
//                                           rest are not (a kill during a checkpoint upload)
//   CAPFLOW_TEST_KILL_AFTER_COMMIT=<text>   SIGKILL right after it is committed (e.g. a commit marker)
import fsp from "node:fs/promises";

const die = () => {
  process.kill(process.pid, "SIGKILL");
  // Never reached: SIGKILL to oneself is delivered before kill(2) returns. Belt and braces.
  return new Promise(() => {});
};

const before = process.env.CAPFLOW_TEST_KILL_BEFORE_COMMIT;
const after = process.env.CAPFLOW_TEST_KILL_AFTER_COMMIT;

if (before || after) {
  for (const name of ["rename", "link"]) {
    const original = fsp[name];
    fsp[name] = async function (from, to, ...rest) {
      const target = String(to);
      if (before && target.includes(before)) await die();
      const out = await original.call(this, from, to, ...rest);
      if (after && target.includes(after)) await die();
      return out;
    };
  }
}
