// A stand-in for the agent inside a target, for tests of what the CLI does with a snapshot document it
// cannot read (a foreign schema or version, a wire format from elsewhere, a broken stack table).

/**
 * Source text of an object that speaks the agent's real snapshot protocol (streamSnapshot, then
 * nextSnapshotPiece until null) and writes `docExpr` (an expression for the document text, evaluated
 * in the target) in two pieces. Assign it to globalThis[Symbol.for('ferrydiag.agent')].
 */
export function streamingFakeAgent(docExpr: string): string {
  return `(() => {
    const doc = () => ${docExpr};
    let pieces = [];
    return {
      snapshotJson: doc,
      streamSnapshot: () => { const text = doc(); pieces = [text.slice(0, 5), text.slice(5)]; return {id: 1} },
      nextSnapshotPiece: (id) => Promise.resolve(id === 1 && pieces.length > 0 ? pieces.shift() : null),
    }
  })()`
}
