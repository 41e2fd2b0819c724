import AttnaxTokenizers
import Foundation

/// What `attnax generate` prints on rank 0's stdout.
///
/// One prompt with a tokenizer: the text, streamed as tokens arrive (incomplete UTF-8 held
/// back, special tokens not shown). Several prompts: each completion after the batch ends,
/// under a `--- prompt N` line. No tokenizer (the built-in model, --prompt-ids): the ids, on a
/// `tokens:` line, streamed.
struct GenerationPrinter {
  let text: Tokenizer?
  let prompts: Int
  let rank: Int
  var stream: StreamingDetokenizer?

  init(text: Tokenizer?, prompts: Int, rank: Int) {
    self.text = text; self.prompts = prompts; self.rank = rank
    stream = prompts == 1 ? text?.makeStreamingDetokenizer(skipSpecial: true) : nil
    if rank == 0 && text == nil && prompts == 1 { emit("tokens:") }
  }

  mutating func token(_ id: Int32, row: Int) {
    guard rank == 0 else { return }
    if text == nil {
      if prompts == 1 { emit(" \(id)") }
    } else if stream != nil {
      emit(stream!.append(id))
    }
  }

  mutating func finish(_ tokens: [[Int32]]) {
    guard rank == 0 else { return }
    if let text {
      if stream != nil {
        emit(stream!.flush() + "\n")
      } else {
        for (i, ids) in tokens.enumerated() { emit("--- prompt \(i + 1)\n\(text.decode(ids, skipSpecial: true))\n") }
      }
    } else if prompts == 1 {
      emit("\n")
    } else {
      for (i, ids) in tokens.enumerated() { emit("prompt \(i + 1) tokens: \(ids.map(String.init).joined(separator: " "))\n") }
    }
  }

  func emit(_ s: String) {
    FileHandle.standardOutput.write(Data(s.utf8))
  }
}
