// Topology's layout line from a host list, without MPI: by-slot placement (tp groups inside
// hosts) against round-robin placement (every tp group spanning hosts), groups that straddle a
// host boundary, the "; ..." after two spanning groups, host order, and `compact` runs
// (0,1 stay a list; three or more consecutive ranks become 4-7).

import Testing

@testable import AttnaxCLI

@Suite("Topology line")
struct TopologyTests {
  @Test("compact writes runs of three or more as a-b and shorter runs as lists")
  func compact() {
    let cases: [([Int], String)] = [
      ([], ""), ([0], "0"), ([0, 1], "0,1"), ([0, 1, 2], "0-2"), ([4, 5, 6, 7], "4-7"), ([0, 2, 4], "0,2,4"),
      ([0, 1, 4, 5, 6, 7, 9], "0,1,4-7,9"), ([3, 4, 6, 7, 8], "3,4,6-8"), ([1, 3, 4, 5, 6, 10, 11], "1,3-6,10,11"),
    ]
    for (ranks, want) in cases { #expect(Topology.compact(ranks) == want, "\(ranks)") }
  }

  @Test("one host: every tp group is within it")
  func oneHost() {
    #expect(
      Topology.describe(tp: 2, cp: 2, hosts: ["a", "a", "a", "a"])
        == "layout: tp 2 x cp 2; tp groups within hosts: yes; hosts: a[0-3]")
  }

  @Test("by-slot placement with a multiple of tp slots per host keeps tp groups within hosts")
  func bySlot() {
    #expect(
      Topology.describe(tp: 2, cp: 2, hosts: ["ax-h1", "ax-h1", "ax-h2", "ax-h2"])
        == "layout: tp 2 x cp 2; tp groups within hosts: yes; hosts: ax-h1[0,1] ax-h2[2,3]")
    #expect(
      Topology.describe(tp: 4, cp: 2, hosts: Array(repeating: "n1", count: 4) + Array(repeating: "n2", count: 4))
        == "layout: tp 4 x cp 2; tp groups within hosts: yes; hosts: n1[0-3] n2[4-7]")
    // tp 1: a group is one rank, so always within a host, whatever the placement.
    #expect(
      Topology.describe(tp: 1, cp: 4, hosts: ["a", "b", "a", "b"])
        == "layout: tp 1 x cp 4; tp groups within hosts: yes; hosts: a[0,2] b[1,3]")
  }

  @Test("round-robin placement puts every tp group across hosts; past two groups the list ends with ...")
  func roundRobin() {
    #expect(
      Topology.describe(tp: 2, cp: 2, hosts: ["a", "b", "a", "b"])
        == "layout: tp 2 x cp 2; tp groups within hosts: no (ranks 0,1 on a,b; ranks 2,3 on a,b); hosts: a[0,2] b[1,3]")
    #expect(
      Topology.describe(tp: 2, cp: 4, hosts: ["a", "b", "a", "b", "a", "b", "a", "b"])
        == "layout: tp 2 x cp 4; tp groups within hosts: no (ranks 0,1 on a,b; ranks 2,3 on a,b; ...); hosts: a[0,2,4,6] b[1,3,5,7]"
    )
  }

  @Test("groups straddling a host boundary are the ones named")
  func straddling() {
    // 3 slots per host, tp 2: group 1 (ranks 2, 3) spans a and b.
    #expect(
      Topology.describe(tp: 2, cp: 3, hosts: ["a", "a", "a", "b", "b", "b"])
        == "layout: tp 2 x cp 3; tp groups within hosts: no (ranks 2,3 on a,b); hosts: a[0-2] b[3-5]")
    // One tp group over two hosts.
    #expect(
      Topology.describe(tp: 4, cp: 1, hosts: ["a", "a", "b", "b"])
        == "layout: tp 4 x cp 1; tp groups within hosts: no (ranks 0,1,2,3 on a,a,b,b); hosts: a[0,1] b[2,3]")
  }

  @Test("hosts are listed in order of their first rank")
  func hostOrder() {
    #expect(
      Topology.describe(tp: 1, cp: 3, hosts: ["zeta", "alpha", "zeta"])
        == "layout: tp 1 x cp 3; tp groups within hosts: yes; hosts: zeta[0,2] alpha[1]")
  }

  @Test("pipeline stages: the line says tp x cp x pp, every stage's tp groups, and the layers on each host")
  func stages() {
    #expect(
      Topology.describe(tp: 2, cp: 1, hosts: ["a", "a", "b", "b"], stageLayers: [0..<15, 15..<30])
        == "layout: tp 2 x cp 1 x pp 2; tp groups within hosts: yes; hosts: a[0,1] b[2,3]; "
        + "stages: layers 0-14 on ranks 0,1 (a), layers 15-29 on ranks 2,3 (b)")
    // Round robin: the second stage's tp group spans the hosts too.
    #expect(
      Topology.describe(tp: 2, cp: 1, hosts: ["a", "b", "a", "b"], stageLayers: [0..<2, 2..<4])
        == "layout: tp 2 x cp 1 x pp 2; tp groups within hosts: no (ranks 0,1 on a,b; ranks 2,3 on a,b); "
        + "hosts: a[0,2] b[1,3]; stages: layers 0-1 on ranks 0,1 (a,b), layers 2-3 on ranks 2,3 (a,b)")
  }
}
