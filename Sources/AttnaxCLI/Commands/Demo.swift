import ArgumentParser
import AttnaxBlocks
import AttnaxDist
import AttnaxFormats
import Foundation

struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run a small built-in encoder and decoder block (fixed-seed weights, no files).")
  @OptionGroup var layout: LayoutOptions

  func run() throws {
    try Launch.main { world in
      let grid = try layout.grid(world)
      try DemoRun(world: world, grid: grid).run()
      return 0
    }
  }
}
