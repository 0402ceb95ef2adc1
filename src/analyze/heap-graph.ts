// The parsed heap snapshot as a graph: nodes by ordinal (0 = the synthetic root), outgoing edges from
// the snapshot's own layout, incoming edges from a compressed reverse index, and each node's source
// location. Read-only and free of I/O, so analyses can be tested on a recorded snapshot.

/** The parts of a V8 .heapsnapshot the graph reads (src/attach/heap-snapshot.ts parses them). */
export interface HeapGraphData {
  nodeFields: string[]
  edgeFields: string[]
  nodeTypeNames: string[]
  edgeTypeNames: string[]
  /** node_count × nodeFields.length values (type, name, id, self_size, edge_count, …). */
  nodes: Uint32Array
  /** edge_count × edgeFields.length values (type, name_or_index, to_node as an index into nodes). */
  edges: Uint32Array
  /** (object_index, script_id, line, column) quadruples; line and column are 0-based. */
  locations: Uint32Array
  strings: string[]
}

/** A 0-based source position as V8 records it (script id, line, column). */
export interface HeapLocation {
  scriptId: number
  line: number
  column: number
}

export class HeapGraph {
  readonly nodeCount: number
  readonly edgeCount: number
  readonly strings: string[]
  private readonly nodes: Uint32Array
  private readonly edges: Uint32Array
  private readonly nodeFieldCount: number
  private readonly edgeFieldCount: number
  private readonly typeOffset: number
  private readonly nameOffset: number
  private readonly idOffset: number
  private readonly selfSizeOffset: number
  private readonly edgeCountOffset: number
  private readonly edgeTypeOffset: number
  private readonly edgeNameOffset: number
  private readonly edgeToOffset: number
  private readonly nodeTypeNames: string[]
  private readonly edgeTypeNames: string[]
  /** firstEdge[i] .. firstEdge[i+1]-1: edge ordinals leaving node i. */
  private readonly firstEdge: Uint32Array
  /** Reverse index: for node i, revEdge[revFirst[i] .. revFirst[i+1]-1] are edge ordinals into it. */
  private readonly revFirst: Uint32Array
  private readonly revEdge: Uint32Array
  /** Source node of each edge ordinal (the snapshot stores edges grouped by source only implicitly). */
  private readonly edgeFrom: Uint32Array
  private readonly locationByNode = new Map<number, HeapLocation>()
  private readonly typeCodes: Record<string, number> = {}
  private readonly edgeTypeCodes: Record<string, number> = {}
  private readonly idToOrdinal = new Map<number, number>()

  constructor(data: HeapGraphData) {
    this.nodes = data.nodes
    this.edges = data.edges
    this.strings = data.strings
    this.nodeFieldCount = data.nodeFields.length
    this.edgeFieldCount = data.edgeFields.length
    this.typeOffset = data.nodeFields.indexOf('type')
    this.nameOffset = data.nodeFields.indexOf('name')
    this.idOffset = data.nodeFields.indexOf('id')
    this.selfSizeOffset = data.nodeFields.indexOf('self_size')
    this.edgeCountOffset = data.nodeFields.indexOf('edge_count')
    this.edgeTypeOffset = data.edgeFields.indexOf('type')
    this.edgeNameOffset = data.edgeFields.indexOf('name_or_index')
    this.edgeToOffset = data.edgeFields.indexOf('to_node')
    this.nodeTypeNames = data.nodeTypeNames
    this.edgeTypeNames = data.edgeTypeNames
    data.nodeTypeNames.forEach((name, code) => (this.typeCodes[name] = code))
    data.edgeTypeNames.forEach((name, code) => (this.edgeTypeCodes[name] = code))
    this.nodeCount = data.nodes.length / this.nodeFieldCount
    this.edgeCount = data.edges.length / this.edgeFieldCount

    const nodeCount = this.nodeCount
    const edgeCount = this.edgeCount
    this.firstEdge = new Uint32Array(nodeCount + 1)
    this.edgeFrom = new Uint32Array(edgeCount)
    const inDegree = new Uint32Array(nodeCount + 1)
    let edge = 0
    for (let node = 0; node < nodeCount; node++) {
      this.firstEdge[node] = edge
      const count = this.nodes[node * this.nodeFieldCount + this.edgeCountOffset]
      for (let k = 0; k < count; k++, edge++) {
        this.edgeFrom[edge] = node
        inDegree[this.edges[edge * this.edgeFieldCount + this.edgeToOffset] / this.nodeFieldCount]++
      }
    }
    this.firstEdge[nodeCount] = edge
    this.revFirst = new Uint32Array(nodeCount + 1)
    for (let node = 0, sum = 0; node <= nodeCount; node++) {
      this.revFirst[node] = sum
      sum += inDegree[node]
    }
    const cursor = this.revFirst.slice(0, nodeCount)
    this.revEdge = new Uint32Array(edgeCount)
    for (let e = 0; e < edgeCount; e++) {
      const to = this.edges[e * this.edgeFieldCount + this.edgeToOffset] / this.nodeFieldCount
      this.revEdge[cursor[to]++] = e
    }
    const locations = data.locations
    for (let i = 0; i + 3 < locations.length; i += 4) {
      this.locationByNode.set(locations[i] / this.nodeFieldCount, {
        scriptId: locations[i + 1],
        line: locations[i + 2],
        column: locations[i + 3],
      })
    }
  }

  /** Numeric code of a node type name ('object', 'closure', …), or -1 when this snapshot lacks it. */
  nodeTypeCode(name: string): number {
    return this.typeCodes[name] ?? -1
  }

  edgeTypeCode(name: string): number {
    return this.edgeTypeCodes[name] ?? -1
  }

  nodeType(node: number): string {
    return this.nodeTypeNames[this.nodes[node * this.nodeFieldCount + this.typeOffset]]
  }

  nodeTypeCodeOf(node: number): number {
    return this.nodes[node * this.nodeFieldCount + this.typeOffset]
  }

  nodeName(node: number): string {
    return this.strings[this.nodes[node * this.nodeFieldCount + this.nameOffset]]
  }

  /** The heap object id (stable within a session; what HeapProfiler.getObjectByHeapObjectId takes). */
  nodeId(node: number): number {
    return this.nodes[node * this.nodeFieldCount + this.idOffset]
  }

  nodeSelfSize(node: number): number {
    return this.nodes[node * this.nodeFieldCount + this.selfSizeOffset]
  }

  /** Ordinal of the node with this heap object id, or -1. */
  nodeByHeapId(id: number): number {
    if (this.idToOrdinal.size === 0) {
      for (let node = 0; node < this.nodeCount; node++) this.idToOrdinal.set(this.nodeId(node), node)
    }
    return this.idToOrdinal.get(id) ?? -1
  }

  location(node: number): HeapLocation | undefined {
    return this.locationByNode.get(node)
  }

  firstEdgeOf(node: number): number {
    return this.firstEdge[node]
  }

  endEdgeOf(node: number): number {
    return this.firstEdge[node + 1]
  }

  edgeTypeCodeOf(edge: number): number {
    return this.edges[edge * this.edgeFieldCount + this.edgeTypeOffset]
  }

  edgeType(edge: number): string {
    return this.edgeTypeNames[this.edgeTypeCodeOf(edge)]
  }

  /** Property/variable name of the edge, or its index as a string for element and hidden edges. */
  edgeName(edge: number): string {
    const raw = this.edges[edge * this.edgeFieldCount + this.edgeNameOffset]
    const type = this.edgeType(edge)
    if (type === 'element' || type === 'hidden') return String(raw)
    return this.strings[raw] ?? String(raw)
  }

  edgeTarget(edge: number): number {
    return this.edges[edge * this.edgeFieldCount + this.edgeToOffset] / this.nodeFieldCount
  }

  edgeSource(edge: number): number {
    return this.edgeFrom[edge]
  }

  /** Edge ordinals pointing at node. */
  *incomingEdges(node: number): Iterable<number> {
    for (let k = this.revFirst[node]; k < this.revFirst[node + 1]; k++) yield this.revEdge[k]
  }

  incomingCount(node: number): number {
    return this.revFirst[node + 1] - this.revFirst[node]
  }

  /** First target of an outgoing edge with this name (any type), or -1. */
  child(node: number, edgeName: string): number {
    for (let e = this.firstEdge[node]; e < this.firstEdge[node + 1]; e++) {
      if (this.edgeName(e) === edgeName) return this.edgeTarget(e)
    }
    return -1
  }

  /**
   * Targets of every property edge with this exact name, anywhere in the graph (one pass over the
   * edges comparing string-table indexes; ~10 ms per million edges). For finding a uniquely named
   * object, e.g. one hung on the global under a Symbol.for key ("<symbol NAME>" in a snapshot).
   */
  propertyTargets(name: string): number[] {
    const wanted = new Set<number>()
    this.strings.forEach((s, index) => {
      if (s === name) wanted.add(index)
    })
    const propertyCode = this.edgeTypeCodes.property
    const found: number[] = []
    if (wanted.size === 0 || propertyCode === undefined) return found
    for (let e = 0; e < this.edgeCount; e++) {
      const base = e * this.edgeFieldCount
      if (this.edges[base + this.edgeTypeOffset] === propertyCode && wanted.has(this.edges[base + this.edgeNameOffset])) {
        found.push(this.edgeTarget(e))
      }
    }
    return found
  }

  /** Element edges of an array-like node as index → target ordinal. */
  elements(node: number): Map<number, number> {
    const elementCode = this.edgeTypeCodes.element
    const result = new Map<number, number>()
    for (let e = this.firstEdge[node]; e < this.firstEdge[node + 1]; e++) {
      if (this.edgeTypeCodeOf(e) === elementCode) result.set(this.edges[e * this.edgeFieldCount + this.edgeNameOffset], this.edgeTarget(e))
    }
    return result
  }

  /** Value of a string-typed property (e.g. a channel's `name`), or undefined. */
  stringProperty(node: number, property: string): string | undefined {
    const propertyCode = this.edgeTypeCodes.property
    for (let e = this.firstEdge[node]; e < this.firstEdge[node + 1]; e++) {
      if (this.edgeTypeCodeOf(e) !== propertyCode || this.edgeName(e) !== property) continue
      const target = this.edgeTarget(e)
      const type = this.nodeType(target)
      if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return this.nodeName(target)
      return undefined
    }
    return undefined
  }

  /** A short label for messages: "Channel@12345". */
  label(node: number): string {
    return `${this.nodeName(node) || this.nodeType(node)}@${this.nodeId(node)}`
  }
}
