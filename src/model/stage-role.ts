// The one place that guesses a stage's role from its name, for pipelines that do not say which stage
// reads the binlog and which writes the target (a stage named explicitly to an analysis wins over these).

/** The stage that reads the source: "binlog-streamer", "reader", "source". */
const STREAMER_NAME = /stream|read|source/i
/** The stage that writes the target: "binlog-writer", "applier", "sink". */
const WRITER_NAME = /writ|appl|sink/i

/** A stage whose name says it reads the source (a name may also look like a writer: "stream-writer"). */
export function looksLikeStreamer(stageName: string): boolean {
  return STREAMER_NAME.test(stageName)
}

/** A stage whose name says it writes the target. */
export function looksLikeWriter(stageName: string): boolean {
  return WRITER_NAME.test(stageName)
}
