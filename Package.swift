// swift-tools-version:6.0
import PackageDescription

// The targets follow one forward pass:
//   AttnaxFormats  untrusted bytes in, typed values out (tensors, errors, JSON, safetensors, configs)
//   AttnaxDist     ranks and bytes: communicators, the tp x cp grid, collectives, deadlines (MPI)
//   AttnaxTokenizers  text <-> ids: byte-level BPE, WordPiece, streaming detokenizer, chat templates
//   AttnaxBlocks   the maths: weights, parallel layout, kernels, attention, layers, models
//   AttnaxCLI      the `attnax` commands as a library (parse, build the grid, load, run, report;
//                  Serve/: the OpenAI-compatible HTTP server)
//   launcher       the `attnax` executable: one line calling AttnaxCLI
let package = Package(
  name: "attnax-swift",
  products: [
    .library(name: "AttnaxFormats", targets: ["AttnaxFormats"]),
    .library(name: "AttnaxDist", targets: ["AttnaxDist"]),
    .library(name: "AttnaxTokenizers", targets: ["AttnaxTokenizers"]),
    .library(name: "AttnaxBlocks", targets: ["AttnaxBlocks"]),
    .library(name: "AttnaxCLI", targets: ["AttnaxCLI"]),
    .executable(name: "attnax", targets: ["launcher"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    // `swift package generate-documentation` (DocC catalogs in Sources/*/*.docc)
    .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    // `attnax serve`: HTTP/1.1 (SwiftNIO), request logs (swift-log), /metrics (swift-prometheus).
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
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
    .target(name: "AttnaxFormats"),
    .target(name: "AttnaxDist", dependencies: ["CMPI"]),
    .target(name: "AttnaxTokenizers", dependencies: ["AttnaxFormats"]),
    .target(name: "AttnaxBlocks", dependencies: ["AttnaxFormats", "AttnaxDist", "CBLAS", "CKernels"]),
    .target(
      name: "AttnaxCLI",
      dependencies: [
        "AttnaxFormats", "AttnaxDist", "AttnaxBlocks", "AttnaxTokenizers",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Prometheus", package: "swift-prometheus"),
      ]),
    // The product (and so the binary, .build/<config>/attnax) keeps the command's name.
    .executableTarget(name: "launcher", dependencies: ["AttnaxCLI"]),
    // What only tests share: a seeded generator, tolerance expectations, fixture paths, processes.
    .target(name: "_TestSupport", dependencies: ["AttnaxFormats", "AttnaxDist"]),
    .testTarget(name: "AttnaxFormatsTests", dependencies: ["AttnaxFormats", "_TestSupport"]),
    .testTarget(name: "AttnaxDistTests", dependencies: ["AttnaxDist", "AttnaxFormats", "_TestSupport"]),
    .testTarget(
      name: "AttnaxBlocksTests", dependencies: ["AttnaxBlocks", "AttnaxFormats", "AttnaxDist", "CKernels", "_TestSupport"]),
    .testTarget(name: "AttnaxTokenizersTests", dependencies: ["AttnaxTokenizers", "AttnaxFormats", "_TestSupport"]),
    .testTarget(name: "AttnaxCLITests", dependencies: ["AttnaxCLI", "AttnaxBlocks", "AttnaxFormats", "AttnaxDist", "_TestSupport"]),
  ],
  swiftLanguageModes: [.v6]
)
