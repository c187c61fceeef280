/**
 * Greedy and beam search over a step decoder, written once for every runtime.
 *
 * A search is a generator: it yields what to feed next (a `StepRequest`) and is resumed with what the
 * step produced. `runSync` drives it with a synchronous step (the tfjs model, which the trainer calls
 * inside its epoch loop) and `runAsync` with an asynchronous one (ONNX Runtime's `session.run`), so the
 * bookkeeping — finished rows, candidate ranking, length penalty, pruning — exists in one place only.
 *
 * Two rules hold for every caption whatever the runtime (`bannedTokens`): `<end>` is not allowed before
 * the first word (the 3-epoch demo model answered "" for every test image, issue 13), and no token may
 * follow itself twice (a third time in a row: "a a a a a a" was served for out-of-style images).
 * `<pad>` and `<start>` are never emitted either.
 */

export interface DecodeResult {
  /** Word ids without `<start>` and `<end>`. */
  tokens: number[][];
  /** Sum of log-probabilities of the emitted tokens (`<end>` included when emitted). */
  logProbs: number[];
}

export interface BeamResult {
  tokens: number[];
  logProb: number;
  /** logProb / length^lengthPenalty, what the beams were ranked by. */
  score: number;
}

export interface SearchConfig {
  vocabSize: number;
  startId: number;
  endId: number;
  /** Counts `<start>` and `<end>`: at most maxLength - 1 tokens are emitted. */
  maxLength: number;
  /** Default 0. Never emitted. */
  padId?: number;
}

/** Tokens that may not come next after `tokens` (the words so far, without `<start>`). */
export function bannedTokens(cfg: SearchConfig, tokens: readonly number[]): number[] {
  const banned = [cfg.padId ?? 0, cfg.startId];
  if (tokens.length === 0) banned.push(cfg.endId);
  const n = tokens.length;
  if (n >= 2 && tokens[n - 1] === tokens[n - 2]) banned.push(tokens[n - 1]!);
  return banned;
}

/** Whether the model's own best token can be taken as it is: a rule only bites at the start or after a repeat. */
function mayBan(tokens: readonly number[]): boolean {
  const n = tokens.length;
  return n === 0 || (n >= 2 && tokens[n - 1] === tokens[n - 2]);
}

/** The best allowed token of `row` (first on ties) and its log-probability. */
function bestAllowed(row: Float32Array, banned: readonly number[]): { token: number; logProb: number } {
  let b = -1;
  for (let k = 0; k < row.length; k++) {
    if (banned.includes(k)) continue;
    if (b < 0 || row[k]! > row[b]!) b = k;
  }
  return { token: b, logProb: row[b]! };
}

export interface BeamOptions {
  width: number;
  maxLength?: number;
  lengthPenalty?: number;
}

/**
 * Feed `tokens[j]` to row j of the decoder state. `parents`, when present, first rebuilds the state:
 * row j continues row `parents[j]` of the previous step's state (beams that survive, greedy rows that
 * have not ended). The first request of a search has no parents: one row per input image.
 */
export interface StepRequest {
  tokens: Int32Array;
  parents?: readonly number[];
  /**
   * Greedy only: the search needs this step's full log-probabilities (`BestTokens.logProbs`), because a
   * rule may forbid some row's best token. Runtimes that can fetch only the best token (ONNX) do so
   * on the other steps.
   */
  full?: boolean;
}

/** Per row, the most likely next token (the first one on ties) and its log-probability. */
export interface BestTokens {
  best: ArrayLike<number>;
  logProb: ArrayLike<number>;
  /** [rows × V], present when the request asked for it (`full`). */
  logProbs?: Float32Array;
}

/** Greedy decoding of `n` rows; resumed with each step's best tokens. Finished rows leave the state. */
export function* greedySearch(
  n: number,
  cfg: SearchConfig,
): Generator<StepRequest, DecodeResult, BestTokens> {
  const out: number[][] = Array.from({ length: n }, () => []);
  const logProbs = new Array<number>(n).fill(0);
  let live = Array.from({ length: n }, (_, i) => i); // image row of each state row
  let req: StepRequest = { tokens: new Int32Array(n).fill(cfg.startId), full: true };
  for (let t = 0; t < cfg.maxLength - 1 && live.length > 0; t++) {
    const { best, logProb, logProbs: full } = yield req;
    const V = cfg.vocabSize;
    const parents: number[] = [];
    const tokens: number[] = [];
    live.forEach((row, j) => {
      let token = best[j]!;
      let lp = logProb[j]!;
      const banned = bannedTokens(cfg, out[row]!);
      if (banned.includes(token)) {
        if (!full)
          throw new Error("greedy search: a rule applies but the step gave no full log-probabilities");
        ({ token, logProb: lp } = bestAllowed(full.subarray(j * V, (j + 1) * V), banned));
      }
      logProbs[row]! += lp;
      if (token === cfg.endId) return;
      out[row]!.push(token);
      parents.push(j);
      tokens.push(token);
    });
    const allGoOn = parents.length === live.length;
    live = parents.map((j) => live[j]!);
    // Rows that ended drop out, so a batch gets cheaper as its captions finish.
    const needFull = live.some((row) => mayBan(out[row]!));
    req = {
      tokens: Int32Array.from(tokens),
      ...(allGoOn ? {} : { parents }),
      ...(needFull ? { full: true } : {}),
    };
  }
  return { tokens: out, logProbs };
}

/** Beam search from one image; resumed with each step's log-probabilities [rows × vocab]. Best first. */
export function* beamSearch(
  cfg: SearchConfig,
  opts: BeamOptions,
): Generator<StepRequest, BeamResult[], Float32Array> {
  const { vocabSize: V, startId, endId, maxLength } = cfg;
  const width = Math.max(1, Math.floor(opts.width));
  const alpha = opts.lengthPenalty ?? 0;
  const score = (logProb: number, len: number) => logProb / Math.pow(Math.max(1, len), alpha);
  let beams: { tokens: number[]; logProb: number; parent: number }[] = [
    { tokens: [], logProb: 0, parent: 0 },
  ];
  let parents: number[] | undefined;
  const finished: BeamResult[] = [];
  for (let t = 0; t < maxLength - 1 && beams.length > 0; t++) {
    const logp = yield { tokens: Int32Array.from(beams, (b) => b.tokens.at(-1) ?? startId), parents };
    // Candidates: the best `width` extensions of every beam, then the best `width` live ones overall.
    const cands: { parent: number; token: number; logProb: number }[] = [];
    beams.forEach((b, i) => {
      const row = logp.slice(i * V, (i + 1) * V);
      for (const k of bannedTokens(cfg, b.tokens)) row[k] = -Infinity;
      for (const k of topK(row, width))
        if (row[k]! > -Infinity) cands.push({ parent: i, token: k, logProb: b.logProb + row[k]! });
    });
    cands.sort((a, b) => b.logProb - a.logProb);
    const keep: typeof beams = [];
    for (const cand of cands) {
      const tokens = [...beams[cand.parent]!.tokens, cand.token];
      if (cand.token === endId) {
        finished.push({
          tokens: tokens.slice(0, -1),
          logProb: cand.logProb,
          score: score(cand.logProb, tokens.length),
        });
      } else if (keep.length < width) {
        keep.push({ tokens, logProb: cand.logProb, parent: cand.parent });
      }
    }
    if (t === maxLength - 2) {
      // Out of room: the live beams end here without <end>.
      for (const b of keep)
        finished.push({ tokens: b.tokens, logProb: b.logProb, score: score(b.logProb, b.tokens.length) });
      keep.length = 0;
    }
    if (alpha === 0 && finished.length >= width) {
      // Without a length bonus a beam's score only falls: drop those that cannot enter the top `width`.
      const cutoff = finished.map((f) => f.score).sort((a, b) => b - a)[width - 1]!;
      beams = keep.filter((b) => b.logProb > cutoff);
    } else {
      beams = keep;
    }
    parents = beams.map((b) => b.parent);
  }
  finished.sort((a, b) => b.score - a.score);
  return finished.slice(0, width);
}

/** Log-likelihood of given captions: the sum over their words and `<end>`, and how many tokens that was. */
export interface ScoreResult {
  logProbs: number[];
  lengths: number[];
}

/**
 * Scores fixed word sequences, one per row (row i of the first request is image row i): feeds each
 * sequence through the decoder as in teacher forcing and sums the log-probability of every next word
 * and of `<end>`. Retrieval re-ranking ranks candidate captions by this, divided by the length.
 * Resumed with each step's log-probabilities [live rows × V].
 */
export function* scoreSearch(
  sequences: readonly (readonly number[])[],
  cfg: SearchConfig,
): Generator<StepRequest, ScoreResult, Float32Array> {
  const V = cfg.vocabSize;
  const logProbs = new Array<number>(sequences.length).fill(0);
  const lengths = sequences.map((s) => s.length + 1);
  let live = sequences.map((_, i) => i);
  let req: StepRequest = { tokens: new Int32Array(sequences.length).fill(cfg.startId) };
  for (let t = 0; live.length > 0; t++) {
    const logp = yield req;
    const parents: number[] = [];
    live.forEach((row, j) => {
      const seq = sequences[row]!;
      const target = t < seq.length ? seq[t]! : cfg.endId;
      logProbs[row]! += logp[j * V + target]!;
      if (t < seq.length) parents.push(j);
    });
    const allGoOn = parents.length === live.length;
    live = parents.map((j) => live[j]!);
    req = {
      tokens: Int32Array.from(live, (row) => sequences[row]![t]!),
      ...(allGoOn ? {} : { parents }),
    };
  }
  return { logProbs, lengths };
}

/** Runs a search with a synchronous step. */
export function runSync<Req, Res, Out>(search: Generator<Req, Out, Res>, step: (req: Req) => Res): Out {
  let r = search.next();
  while (!r.done) r = search.next(step(r.value));
  return r.value;
}

/** Runs a search with an asynchronous step. */
export async function runAsync<Req, Res, Out>(
  search: Generator<Req, Out, Res>,
  step: (req: Req) => Promise<Res>,
): Promise<Out> {
  let r = search.next();
  while (!r.done) r = search.next(await step(r.value));
  return r.value;
}

/** Argmax (first on ties, as ONNX ArgMax) and its value for each row of `logp` [rows × V]. */
export function bestOfRows(logp: Float32Array, V: number): BestTokens {
  const rows = logp.length / V;
  const best = new Int32Array(rows);
  const logProb = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    const row = logp.subarray(i * V, (i + 1) * V);
    let b = 0;
    for (let k = 1; k < V; k++) if (row[k]! > row[b]!) b = k;
    best[i] = b;
    logProb[i] = row[b]!;
  }
  return { best, logProb };
}

/** Indices of the k largest values (k small). */
function topK(row: Float32Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (best.length < k) {
      best.push(i);
      best.sort((a, b) => row[b]! - row[a]!);
    } else if (row[i]! > row[best[k - 1]!]!) {
      best[k - 1] = i;
      best.sort((a, b) => row[b]! - row[a]!);
    }
  }
  return best;
}
