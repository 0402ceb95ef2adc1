// `ferrydiag binlog audit --json`: the report as one JSON document (schema "ferrydiag.binlog-audit", v1),
// printed with plain JSON.stringify.

import type {BinlogAuditReport} from '../model/binlog-audit.js'

export function renderBinlogAuditJson(report: BinlogAuditReport): string {
  return JSON.stringify(report)
}
