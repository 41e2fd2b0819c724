// The commands' inputs without processes: text files split on every newline convention and
// read from pipes, unreadable paths refused saying why, output paths checked before the work,
// models of the wrong kind named by their config field, and every number range-checked as the
// command line is parsed. ProcessContractTests (CommandInputContractTests.swift) runs them
// through the real binary at np 1 and 2.

import ArgumentParser
import AttnaxBlocks
import AttnaxFormats
import Foundation
import Testing

@testable import AttnaxCLI

#if canImport(Glibc)
import Glibc
#endif

@Suite("Command inputs: text files, output paths, model kinds, number ranges")
struct CommandInputTests {
  @Test("lines end at LF, CRLF or CR; empty lines are dropped; a byte-order mark is not text")
  func lineEndings() throws {
    let want = ["first line", "second", "third é"]
    for text in [
      "first line\nsecond\nthird é\n", "first line\r\nsecond\r\nthird é\r\n", "first line\rsecond\rthird é",
      "first line\r\n\r\nsecond\n\rthird é", "\r\nfirst line\nsecond\r\n\nthird é\r",
    ] {
      #expect(TextInput.lines(text) == want, "\(Array(text.utf8))")
    }
    // Swift's "\r\n" is one Character: splitting the String on "\n" kept a Windows file whole.
    #expect("a\r\nb".split(separator: "\n").count == 1)
    #expect(TextInput.lines("  \r\n\t") == ["  ", "\t"])
    #expect(try TextInput.decode([0xEF, 0xBB, 0xBF] + Array("a\r\nb".utf8), path: "f") == "a\r\nb")
    expectMessage("file 'f': is not UTF-8 text: byte 0xff at offset 2") {
      _ = try TextInput.decode([0x61, 0x62, 0xFF], path: "f")
    }
    expectMessage("file 'f': is not UTF-8 text: byte 0xc3 at offset 4") {
      _ = try TextInput.decode([0xEF, 0xBB, 0xBF, 0x61, 0xC3], path: "f")
    }
  }

  @Test("a path that cannot be read says why: missing, a folder, empty; a pipe is read to its end")
  func reading() throws {
    let s = Scratch()
    expectMessage("file '\(s.path)/nowhere.txt': does not exist") { _ = try TextInput.text("\(s.path)/nowhere.txt") }
    expectMessage("file '\(s.path)': is a folder, not a text file") { _ = try TextInput.text(s.path) }
    #expect(try TextInput.text("/dev/null") == "")
    expectMessage("file '/dev/zero': is a character device, not a text file (only a terminal or /dev/null is read)") {
      _ = try TextInput.text("/dev/zero")
    }
    // A FIFO (what <(...) and a piped stdin are): FileManager.contents(atPath:) returned nil for it.
    let fifo = "\(s.path)/fifo"
    #expect(mkfifo(fifo, 0o600) == 0)
    let text = String(repeating: "a line of a prompt\r\n", count: 10_000)  // more than a pipe holds
    let writer = Thread {
      guard let f = fopen(fifo, "w") else { return }
      fputs(text, f)
      fclose(f)
    }
    writer.start()
    #expect(try TextInput.text(fifo) == text)
  }

  @Test("an output path is checked before the work, with the writer's messages, and nothing is left behind")
  func outputPaths() throws {
    let s = Scratch()
    try OutputPath.check("\(s.path)/y.safetensors")
    #expect(try FileManager.default.contentsOfDirectory(atPath: s.path).isEmpty)
    let existing = "\(s.path)/old.safetensors"
    try Data("old".utf8).write(to: URL(fileURLWithPath: existing))
    try OutputPath.check(existing)
    #expect(FileManager.default.contents(atPath: existing) == Data("old".utf8))
    #expect(try FileManager.default.contentsOfDirectory(atPath: s.path) == ["old.safetensors"])
    expectMessage(
      "file '\(s.path)/no/y.safetensors': cannot create a temporary file in '\(s.path)/no': No such file or directory"
    ) {
      try OutputPath.check("\(s.path)/no/y.safetensors")
    }
    expectMessage("file '\(existing)/y': cannot create a temporary file in '\(existing)': Not a directory") {
      try OutputPath.check("\(existing)/y")
    }
    expectMessage("file '\(s.path)': cannot be replaced: Is a directory") { try OutputPath.check(s.path) }
    expectMessage("file '\(s.path)/': is a folder path, not a file path") { try OutputPath.check("\(s.path)/") }
    // Not /dev/null itself: a regression would rename a file over it. A FIFO is refused alike.
    let fifo = "\(s.path)/fifo"
    #expect(mkfifo(fifo, 0o600) == 0)
    expectMessage("file '\(fifo)': exists and is not a regular file (a device, pipe or socket): it would be replaced") {
      try OutputPath.check(fifo)
    }
  }

  @Test("generate refuses a model that cannot generate, embed one that cannot embed, naming the field and its value")
  func modelKinds() throws {
    var encoder = TransformerConfig(model: .transformerEncoder, vocabSize: 8)
    encoder.pooling = .mean
    var decoder = TransformerConfig(model: .transformerDecoder, vocabSize: 8)
    try ModelUse.generate.check(decoder)
    try ModelUse.embed.check(encoder)
    expectMessage(
      "config field 'model': is 'transformer_encoder': generate needs a causal language model (transformer_decoder); an encoder has no next-token head (sentence embeddings: attnax embed)"
    ) { try ModelUse.generate.check(encoder) }
    expectMessage(
      "config field 'model': is 'transformer_decoder': embed needs a sentence-embedding model (transformer_encoder with pooling mean or cls)"
    ) { try ModelUse.embed.check(decoder) }
    encoder.pooling = .none
    expectMessage(
      "config field 'pooling': is 'none': embed needs a sentence-embedding model (transformer_encoder with pooling mean or cls)"
    ) {
      try ModelUse.embed.check(encoder)
    }
    decoder.pooling = .cls
    expectMessage(
      "config field 'pooling': is 'cls': a sentence-embedding model, not a language model: generate cannot use it (attnax embed)"
    ) { try ModelUse.generate.check(decoder) }
    let s = Scratch()
    expectMessage("option '--model': '\(s.path)/none' does not exist") { _ = try ModelUse.generate.open("\(s.path)/none") }
    try Data(#"{"block": "decoder", "d_model": 8}"#.utf8).write(to: URL(fileURLWithPath: "\(s.path)/config.json"))
    expectMessage(
      "config field 'block': is \"decoder\": this folder holds a block stack for attnax forward, not a model embed can run (config.json has no 'model')"
    ) { _ = try ModelUse.embed.open(s.path) }
    expectMessage(
      "option '--model': '\(s.path)/config.json' is a file but not a GGUF file: give a GGUF file or a model folder (config.json, model.safetensors)"
    ) {
      _ = try ModelUse.embed.open("\(s.path)/config.json")
    }
  }

  @Test(
    "every number of every command is range-checked as it is parsed: one line naming the flag and the limit",
    arguments: [
      (["generate", "--max-new-tokens", "0"], "option '--max-new-tokens': must be at least 1, got 0"),
      (["generate", "--runs", "\(Int.max)"], "option '--runs': must be between 1 and 1000, got \(Int.max)"),
      (["generate", "--temperature", "nan"], "option '--temperature': must be 0 (greedy) or a positive finite number, got nan"),
      (["generate", "--temperature", "1e39"], "option '--temperature': must be 0 (greedy) or a positive finite number, got inf"),
      (["generate", "--top-p", "0"], "option '--top-p': must be in (0, 1], got 0.0"),
      (["generate", "--top-k=-3"], "option '--top-k': must be 0 (all tokens) or positive, got -3"),
      (["generate", "--tp", "0"], "option '--tp': must be at least 1, got 0"),
      (["embed", "--model", "m", "--batch-size", "0"], "option '--batch-size': must be between 1 and 4096, got 0"),
      (["embed", "--model", "m", "--runs", "1001"], "option '--runs': must be between 1 and 1000, got 1001"),
      (
        ["forward", "--model", "m", "--input", "i", "--output", "o", "--timeout", "inf"],
        "option '--timeout': must be at most 1000000 seconds, got inf"
      ),
      (["golden", "d", "--timeout=-1"], "option '--timeout': must be a positive number of seconds, got -1.0"),
      (["demo", "--cp", "0"], "option '--cp': must be at least 1, got 0"),
      (["bench", "--config", "custom", "--layers", "5000"], "option '--layers': must be between 1 and 4096, got 5000"),
      (["bench", "--config", "decode", "--warmup=-1"], "option '--warmup': must be between 0 and 100000, got -1"),
      (["bench", "--config", "decode", "--max-repeat", "0"], "option '--max-repeat': must be between 1 and 100000, got 0"),
      (["bench", "--config", "decode", "--budget", "inf"], "option '--budget': must be at most 1000000 seconds, got inf"),
      (
        ["bench", "--config", "decode", "--allreduce-sizes", "4K,inf"],
        "option '--allreduce-sizes': 'inf' is not a size from 4 bytes to 1 GiB (e.g. 4K, 1.5M)"
      ),
      (["bounds", "--model", "m", "--rows", "100000"], "option '--rows': must be between 1 and 8192, got 100000"),
      (["bounds", "--model", "m", "--decode-tokens=-1"], "option '--decode-tokens': must be between 0 and 2147483647, got -1"),
    ])
  func numberRanges(_ args: [String], _ message: String) {
    do {
      _ = try Attnax.parseAsRoot(args)
      Issue.record("\(args): parsed")
    } catch {
      #expect(Attnax.exitCode(for: error) == .validationFailure, "\(args): \(error)")
      #expect(Attnax.message(for: error) == message, "\(args)")
    }
  }

  @Test("a KV cache, an embed batch or a bench block larger than this machine's memory is refused before any allocation")
  func memoryLimits() throws {
    var alibi = TransformerConfig.demo
    alibi.posEmbType = .alibi  // no position limit: only 32-bit positions and the memory bound the cache
    let request = GenerationRequest(prompts: [[1, 2, 3]], maxNewTokens: Int(Int32.max) - 3)
    try Generator.check(request, config: alibi)
    do {
      try Generate.checkCacheMemory(request, config: alibi)
      Issue.record("a 2^31-position KV cache was accepted")
    } catch {
      // 2 layers x K, V x 2 KV heads x 16 floats x 2^31 positions: 1024 GiB.
      #expect(
        "\(error)".hasPrefix(
          "option '--max-new-tokens': the KV cache of 1 prompt(s) x 2147483647 positions needs 1024.0 GiB, more than this machine's memory ("
        ),
        "\(error)")
    }
    try Generate.checkCacheMemory(GenerationRequest(prompts: [[1, 2, 3]], maxNewTokens: 200), config: .demo)
    let bench = try Bench.parse(["--config", "custom", "--seq", "1048576", "--d-model", "65536", "--heads", "4", "--d-ff", "64"])
    do {
      _ = try bench.makeCase("custom")
      Issue.record("a block of 2^20 x 65536 activations was accepted")
    } catch {
      #expect("\(error)".hasPrefix("bench custom: this block needs about "), "\(error)")
    }
    expectMessage("option '--seq': decode needs at least 2 (the cached tokens and the new one), got 1") {
      _ = try Bench.parse(["--config", "decode", "--seq", "1"]).makeCase("decode")
    }
    // embed: 4096 texts of 8192 tokens at once, standard attention (every head's scores).
    var minilm = TransformerConfig(model: .transformerEncoder, vocabSize: 8)
    minilm.dModel = 384; minilm.numHeads = 12; minilm.dFF = 1536
    let texts = [[Int32]](repeating: [Int32](repeating: 1, count: 8192), count: 4096)
    do {
      try Embed.checkMemory(texts, batchSize: 4096, config: minilm)
      Issue.record("a 13 TB batch was accepted")
    } catch {
      #expect(
        "\(error)".hasPrefix("option '--batch-size': a batch of 4096 texts of up to 8192 tokens needs about "), "\(error)")
    }
    try Embed.checkMemory([[Int32]](repeating: [1, 2, 3], count: 100), batchSize: 4096, config: minilm)
    _ = try Bench.parse(["--config", "custom", "--seq", "64", "--d-model", "32", "--heads", "4", "--d-ff", "64"]).makeCase(
      "custom")
  }

  @Test("the largest values in range parse")
  func largestInRange() throws {
    for args in [
      ["generate", "--runs", "1000", "--temperature", "1e-38", "--top-k", "\(Int.max)", "--max-new-tokens", "\(Int.max)"],
      ["embed", "--model", "m", "--batch-size", "4096"], ["demo", "--timeout", "1000000"],
      ["bench", "--config", "decode", "--warmup", "0", "--threads", "1024"],
    ] {
      _ = try Attnax.parseAsRoot(args)
    }
  }
}
