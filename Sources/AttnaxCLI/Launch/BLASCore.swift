import AttnaxBlocks
import AttnaxFormats
import Foundation

/// OpenBLAS picks its GEMM kernel from the CPU model when the library loads. A build older
/// than the CPU does not know the model and falls back to an old kernel: Debian's OpenBLAS
/// 0.3.21 on an Emerald Rapids Xeon (family 6, model 207) runs `Prescott`, its SSE3 kernel,
/// which makes every prefill 3–8x slower than its AVX-512 `SkylakeX` kernel on the same CPU.
///
/// When the user has not chosen (`OPENBLAS_CORETYPE` unset) and OpenBLAS fell back to a
/// pre-AVX2 kernel on an AVX2 or AVX-512 CPU, or chose its AVX-512 kernel on an AMD Zen 4 (where
/// the AVX2 kernel is faster; ``BLAS/recommendedCore(replacing:hardwareLevel:cpu:)``),
/// the launcher re-executes itself once with `OPENBLAS_CORETYPE` set to the matching kernel
/// (the choice must be made before libopenblas initialises, so it cannot be made in-process).
/// Every rank decides the same way on a uniform node. `ATTNAX_BLAS_CORE=keep` keeps OpenBLAS's own choice; an explicit
/// `OPENBLAS_CORETYPE` is never changed.
enum BLASCore {
  /// Set in the re-executed process: the kernel OpenBLAS had chosen itself.
  static let chosenByOpenBLASVariable = "ATTNAX_BLAS_CORE_OPENBLAS"

  /// Re-executes this process with a better `OPENBLAS_CORETYPE` when OpenBLAS fell back (see
  /// above); returns normally when nothing is to be done or the exec failed.
  static func correctFallback() {
    let env = ProcessInfo.processInfo.environment
    guard env["OPENBLAS_CORETYPE"] == nil, env["ATTNAX_BLAS_CORE"] != "keep" else { return }
    let core = BLAS.coreName
    guard let pick = BLAS.recommendedCore(replacing: core, hardwareLevel: Kernels.hardwareLevel, cpu: BLAS.cpuIdentity) else {
      return
    }
    setenv("OPENBLAS_CORETYPE", pick, 1)
    setenv(chosenByOpenBLASVariable, core, 1)
    fflush(nil)
    let args = CommandLine.arguments.map { strdup($0) } + [nil]
    execv("/proc/self/exe", args)
    // exec failed: carry on with OpenBLAS's kernel.
    unsetenv("OPENBLAS_CORETYPE"); unsetenv(chosenByOpenBLASVariable)
  }

  /// Who chose the kernel in use: "openblas", "OPENBLAS_CORETYPE" (the user) or "attnax"
  /// (replacing OpenBLAS's fallback, named by ``openBLASChoice``).
  static var source: String {
    let env = ProcessInfo.processInfo.environment
    if env[chosenByOpenBLASVariable] != nil { return "attnax" }
    return env["OPENBLAS_CORETYPE"] != nil ? "OPENBLAS_CORETYPE" : "openblas"
  }

  /// The kernel OpenBLAS chose by itself (before any correction).
  static var openBLASChoice: String {
    ProcessInfo.processInfo.environment[chosenByOpenBLASVariable] ?? BLAS.coreName
  }

  /// "SkylakeX (chosen by attnax over OpenBLAS's Prescott)", for the tools' first line.
  static var description: String {
    let how = source == "attnax" ? "attnax over OpenBLAS's \(openBLASChoice)" : source
    return "\(BLAS.coreName) (chosen by \(how))"
  }

  /// "BLAS <kernel> (chosen by …) x <n> thread(s), kernels <isa>": the line every command prints
  /// about the maths it runs on.
  static var summary: String { "BLAS \(description) x \(BLAS.threads) thread(s), kernels \(Kernels.name)" }
}
