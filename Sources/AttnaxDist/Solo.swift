extension Communicator {
  /// A pure-Swift communicator of size 1 (MPI untouched): every collective is an identity.
  /// Use it where a layer needs a group but runs alone, e.g. the cp group of a tp-only run.
  public static func solo() -> Communicator { Communicator(rank: 0, size: 1) }
}
