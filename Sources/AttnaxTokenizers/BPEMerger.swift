/// The BPE merge loop over token ids: a doubly linked list of symbols and a min-heap of
/// candidate pairs ordered by (rank, position of the left symbol). Stale candidates (a side
/// already merged away or changed) are skipped when popped, as in llama.cpp and HF.
enum BPEMerger {
  private struct Candidate {
    var rank: Int32
    var left: Int32
    var leftID: Int32
    var rightID: Int32
    var mergedID: Int32

    @inline(__always)
    static func < (a: Candidate, b: Candidate) -> Bool {
      a.rank != b.rank ? a.rank < b.rank : a.left < b.left
    }
  }

  /// A binary min-heap of candidates.
  private struct Heap {
    var items: [Candidate] = []

    mutating func push(_ c: Candidate) {
      items.append(c)
      var i = items.count - 1
      while i > 0 {
        let parent = (i - 1) / 2
        guard items[i] < items[parent] else { break }
        items.swapAt(i, parent)
        i = parent
      }
    }

    mutating func pop() -> Candidate? {
      guard let top = items.first else { return nil }
      let last = items.removeLast()
      if !items.isEmpty {
        items[0] = last
        var i = 0
        while true {
          let l = 2 * i + 1
          let r = l + 1
          var m = i
          if l < items.count, items[l] < items[m] { m = l }
          if r < items.count, items[r] < items[m] { m = r }
          if m == i { break }
          items.swapAt(i, m)
          i = m
        }
      }
      return top
    }
  }

  /// Merges `symbols` (initial ids, one per character) as far as `merges` allow.
  static func merge(_ symbols: [Int32], merges: [UInt64: BPEModel.Merge]) -> [Int32] {
    let n = symbols.count
    if n < 2 { return symbols }
    var ids = symbols
    var next = [Int32](unsafeUninitializedCapacity: n) { buf, count in
      for i in 0..<n { buf[i] = i + 1 < n ? Int32(i + 1) : -1 }
      count = n
    }
    var prev = [Int32](unsafeUninitializedCapacity: n) { buf, count in
      for i in 0..<n { buf[i] = Int32(i - 1) }
      count = n
    }
    var heap = Heap()
    heap.items.reserveCapacity(n)

    @inline(__always) func consider(_ left: Int32) {
      guard left >= 0 else { return }
      let right = next[Int(left)]
      guard right >= 0 else { return }
      let l = ids[Int(left)]
      let r = ids[Int(right)]
      if let m = merges[BPEModel.key(l, r)] {
        heap.push(Candidate(rank: m.rank, left: left, leftID: l, rightID: r, mergedID: m.id))
      }
    }

    for i in 0..<(n - 1) { consider(Int32(i)) }
    while let c = heap.pop() {
      let left = Int(c.left)
      // A merged-away symbol holds id -1, which no candidate has (merges never involve -1).
      guard ids[left] == c.leftID else { continue }
      let right = Int(next[left])
      guard right >= 0, ids[right] == c.rightID else { continue }
      ids[left] = c.mergedID
      ids[right] = -1
      let after = next[right]
      next[left] = after
      if after >= 0 { prev[Int(after)] = Int32(left) }
      consider(prev[left])
      consider(Int32(left))
    }
    var out: [Int32] = []
    out.reserveCapacity(n)
    var i: Int32 = 0
    while i >= 0 {
      out.append(ids[Int(i)])
      i = next[Int(i)]
    }
    return out
  }
}
