// Test-only fault preload for child processes (loaded with NODE_OPTIONS=--import). It touches no role
// code: it wraps node:fs/promises, which LocalStore uses for every write and read.
//   CAPFLOW_TEST_WRITE_LOG=<file>  append "<pid> <path>" for every object committed (rename/link into
//                                  place), so a test counts how often each output was written
//   CAPFLOW_TEST_CRASH_ON=<text>   process.abort() when an object whose path contains <text> is read:
//                                  a stand-in for an input that crashes the process natively
import fs from "node:fs";
import fsp from "node:fs/promises";

const log = process.env.CAPFLOW_TEST_WRITE_LOG;
const crashOn = process.env.CAPFLOW_TEST_CRASH_ON;

if (log) {
  for (const name of ["rename", "link"]) {
    const original = fsp[name];
    fsp[name] = async function (from, to, ...rest) {
      const out = await original.call(this, from, to, ...rest);
      fs.appendFileSync(log, `${process.pid} ${String(to)}\n`);
      return out;
    };
  }
}
if (crashOn) {
  const original = fsp.readFile;
  fsp.readFile = async function (file, ...rest) {
    if (String(file).includes(crashOn)) process.abort();
    return original.call(this, file, ...rest);
  };
}
