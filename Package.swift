// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "attnax-swift",
  products: [
    .library(name: "AttnaxBlocks", targets: ["AttnaxBlocks"]),
    .library(name: "AttnaxDist", targets: ["AttnaxDist"]),
    .library(name: "AttnaxTokenizers", targets: ["AttnaxTokenizers"]),
    .executable(name: "attnax", targets: ["launcher"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),  // `swift package generate-documentation` (DocC catalogs in Sources/*/*.docc)
  ],
  targets: [
    .systemLibrary(
      name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
      providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
    .systemLibrary(
      name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
      providers: [.apt(["libopenblas-dev"])]),
    // Element-wise kernels in C: AVX-512 / AVX2+FMA / portable builds chosen at run time.
    .target(name: "CKernels"),
    .target(name: "AttnaxDist", dependencies: ["CMPI"]),
    .target(name: "AttnaxBlocks", dependencies: ["AttnaxDist", "CBLAS", "CKernels"]),
    // Tokenizers and chat templates for real models: Foundation only, Swift 6 language mode.
    .target(name: "AttnaxTokenizers", swiftSettings: [.swiftLanguageMode(.v6)]),
    .executableTarget(
      name: "launcher",
      dependencies: [
        "AttnaxBlocks", "AttnaxDist",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .testTarget(name: "AttnaxBlocksTests", dependencies: ["AttnaxBlocks", "AttnaxDist", "CKernels"]),
    .testTarget(name: "AttnaxDistTests", dependencies: ["AttnaxDist"]),
    .testTarget(
      name: "AttnaxTokenizersTests", dependencies: ["AttnaxTokenizers"],
      swiftSettings: [.swiftLanguageMode(.v6)]),
  ],
  swiftLanguageModes: [.v5]
)
