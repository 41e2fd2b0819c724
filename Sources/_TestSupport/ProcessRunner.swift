// The one way tests start another program: posix_spawn in a new process group, stdin from
// /dev/null (or a pipe holding the given bytes), stdout and stderr captured in files (no pipe to drain, so a child that writes a lot
// or leaves a grandchild holding the pipe cannot block the test), a deadline after which the
// child and everything it started are killed and the run is reported as timed out.

import AttnaxDist
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a started program ended.
public struct ProcessOutcome: Sendable, CustomStringConvertible {
  /// The argument vector (program first).
  public var command: [String]
  /// The exit status when the program exited by itself, nil when a signal ended it.
  public var exitCode: Int32?
  /// The signal that ended it, if one did.
  public var signal: Int32?
  /// Everything it (and anything it started with the same descriptors) wrote to stdout.
  public var stdout: String
  /// ... and to stderr.
  public var stderr: String
  /// Wall-clock seconds from the spawn to the end (or to the kill).
  public var seconds: Double
  /// True when the deadline passed: the process tree was killed with SIGKILL.
  public var timedOut: Bool

  /// The shell's convention: the exit code, or 128 + the signal number.
  public var status: Int32 { exitCode ?? 128 + (signal ?? 0) }

  /// A summary for test messages.
  public var description: String {
    let how =
      timedOut
      ? "timed out after \(String(format: "%.1f", seconds)) s (killed)"
      : signal.map { "killed by signal \($0)" } ?? "exit \(exitCode ?? -1)"
    return "\(command.map { ($0 as NSString).lastPathComponent }.prefix(3).joined(separator: " ")) ...: \(how), "
      + String(format: "%.2f s", seconds)
  }
}

/// Starts programs for tests (see the file comment). One runner for the whole test suite.
public enum ProcessRunner {
  /// Runs `command` (an absolute program path, then its arguments) with exactly `environment`
  /// and waits for it at most `deadline` seconds. On timeout every process it started (found
  /// through /proc before anything is killed, since MPI ranks sit in process groups of their
  /// own) and its own process group get SIGKILL; the outcome says `timedOut`.
  ///
  /// `stdin`: bytes the program reads from its standard input, a pipe (closed after them, so
  /// the program sees its end); at most ``maxStdinBytes``, which the pipe holds without a
  /// reader. nil: /dev/null.
  /// - Throws: when the program cannot be started at all.
  public static func run(
    _ command: [String], environment: [String: String], deadline: Double, stdin: [UInt8]? = nil
  ) throws -> ProcessOutcome {
    precondition(!command.isEmpty, "no program")
    let scratch = NSTemporaryDirectory() + "attnax-process-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let outPath = scratch + "/stdout", errPath = scratch + "/stderr"
    let outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    let errFD = open(errPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    defer { if outFD >= 0 { close(outFD) }; if errFD >= 0 { close(errFD) } }
    guard outFD >= 0, errFD >= 0 else {
      throw RunError("cannot create capture files in \(scratch): \(String(cString: strerror(errno)))")
    }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    // stdin bytes wait in a FIFO this process holds open for reading and writing (no fd of a
    // plain pipe() to leak, without O_CLOEXEC, into a program another test starts meanwhile);
    // the program opens it to read, and sees its end once this process closes it after the spawn.
    var feeder: Int32 = -1
    defer { if feeder >= 0 { close(feeder) } }
    if let stdin {
      precondition(stdin.count <= maxStdinBytes, "stdin of \(stdin.count) bytes: at most \(maxStdinBytes)")
      let fifo = scratch + "/stdin"
      feeder = mkfifo(fifo, 0o600) == 0 ? open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC) : -1
      guard feeder >= 0 else { throw RunError("stdin FIFO \(fifo): \(String(cString: strerror(errno)))") }
      let written = stdin.withUnsafeBytes { write(feeder, $0.baseAddress, $0.count) }
      guard written == stdin.count else { throw RunError("writing stdin: \(String(cString: strerror(errno)))") }
      posix_spawn_file_actions_addopen(&actions, 0, fifo, O_RDONLY, 0)
    } else {
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_adddup2(&actions, outFD, 1)
    posix_spawn_file_actions_adddup2(&actions, errFD, 2)

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // A process group of its own (so a timeout can kill it whole and a terminal's signals do
    // not reach it), no blocked signals, and default handlers for the ones a test runner may
    // have changed.
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    posix_spawnattr_setpgroup(&attributes, 0)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for s in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGALRM] {
      sigaddset(&defaults, s)
    }
    posix_spawnattr_setsigdefault(&attributes, &defaults)

    let argv = command.map { strdup($0) } + [nil]
    let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for p in argv + envp { free(p) } }

    let t0 = MonotonicClock.seconds()
    var pid = pid_t()
    let rc = posix_spawn(&pid, command[0], &actions, &attributes, argv, envp)
    guard rc == 0 else { throw RunError("cannot start \(command[0]): \(String(cString: strerror(rc)))") }
    if feeder >= 0 {  // the program holds the FIFO open now: its only writer goes, it reads to the end
      close(feeder)
      feeder = -1
    }

    var status: Int32 = 0
    var timedOut = false
    while true {
      let r = waitpid(pid, &status, WNOHANG)
      if r == pid { break }
      if r < 0 && errno != EINTR { throw RunError("waitpid(\(pid)): \(String(cString: strerror(errno)))") }
      if MonotonicClock.seconds() - t0 > deadline {
        timedOut = true
        killTree(pid)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        break
      }
      usleep(5_000)
    }
    let seconds = MonotonicClock.seconds() - t0
    let low = status & 0x7f
    return ProcessOutcome(
      command: command, exitCode: low == 0 ? (status >> 8) & 0xff : nil, signal: low == 0 ? nil : low,
      stdout: contents(ofFile: outPath), stderr: contents(ofFile: errPath), seconds: seconds, timedOut: timedOut)
  }

  /// The most bytes ``run(_:environment:deadline:stdin:)`` feeds a program's stdin: what a
  /// Linux pipe holds before its reader starts.
  public static let maxStdinBytes = 60_000

  /// The environment of this process without MPI's launch variables (a test process that
  /// initialised MPI as a singleton, or runs under mpirun, must not hand its job's identity to
  /// the programs it starts), with `changes` applied (nil removes a variable).
  public static func environment(_ changes: [String: String?] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment.filter { key, _ in
      let launch = ["OMPI_", "PMIX_", "PMI_", "ORTE_", "OPAL_", "HYDRA_"].contains { key.hasPrefix($0) }
      return !launch || key.hasPrefix("OMPI_ALLOW_RUN_AS_ROOT")
    }
    for (k, v) in changes { env[k] = v }
    return env
  }

  /// SIGKILL to `root`, to every process descending from it (collected first: once mpirun dies
  /// its ranks are re-parented) and to the process groups they lead.
  static func killTree(_ root: pid_t) {
    let tree = descendants(of: root)
    kill(-root, SIGKILL)
    for (pid, group) in tree {
      if group == pid { kill(-pid, SIGKILL) }
      kill(pid, SIGKILL)
    }
  }

  /// (pid, process group) of every descendant of `root`, from /proc/N/stat.
  static func descendants(of root: pid_t) -> [(pid: pid_t, group: pid_t)] {
    var parent: [pid_t: (ppid: pid_t, group: pid_t)] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
      guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
      else { continue }
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      guard fields.count > 3, let ppid = pid_t(fields[1]), let group = pid_t(fields[2]) else { continue }
      parent[pid] = (ppid, group)
    }
    var out: [(pid: pid_t, group: pid_t)] = []
    var frontier: Set<pid_t> = [root]
    while !frontier.isEmpty {
      let children = parent.filter { frontier.contains($0.value.ppid) }
      out += children.map { ($0.key, $0.value.group) }
      frontier = Set(children.keys)
      for c in frontier { parent[c] = nil }
    }
    return out
  }

  /// A file's text ("" when it cannot be read).
  public static func contents(ofFile path: String) -> String {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
  }

  struct RunError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
  }
}
