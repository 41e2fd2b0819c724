/// The element type of a GGUF tensor: every ggml type id the `gguf` Python package 0.19 knows.
///
/// Case names are ggml's own type names (`q4_K`, `bf16`), which error messages print. A tensor's
/// elements are stored in blocks of ``blockElements`` elements taking ``blockBytes`` bytes each,
/// along its first dimension (`ne0`); plain types are blocks of one element. Ids that ggml has
/// retired (4, 5, 31–33, 36–38) are not cases: a file using them is refused.
public enum GGMLType: UInt32, Sendable, CaseIterable {
  /// 32-bit IEEE float.
  case f32 = 0
  /// 16-bit IEEE float.
  case f16 = 1
  /// 32 elements: a float16 scale and 4-bit quants (offset 8).
  case q4_0 = 2
  /// 32 elements: float16 scale and minimum, 4-bit quants.
  case q4_1 = 3
  /// 32 elements: a float16 scale and 5-bit quants (offset 16).
  case q5_0 = 6
  /// 32 elements: float16 scale and minimum, 5-bit quants.
  case q5_1 = 7
  /// 32 elements: a float16 scale and 8-bit signed quants.
  case q8_0 = 8
  /// 32 elements: float scale and sum, 8-bit quants (used for dot products).
  case q8_1 = 9
  /// 256-element super-blocks of 2-bit quants with 4-bit scales and minimums.
  case q2_K = 10
  /// 256-element super-blocks of 3-bit quants with 6-bit scales.
  case q3_K = 11
  /// 256-element super-blocks of 4-bit quants with 6-bit scales and minimums.
  case q4_K = 12
  /// 256-element super-blocks of 5-bit quants with 6-bit scales and minimums.
  case q5_K = 13
  /// 256-element super-blocks of 6-bit quants with 8-bit scales.
  case q6_K = 14
  /// 256-element super-blocks of 8-bit quants (used for dot products).
  case q8_K = 15
  /// Importance-matrix 2-bit quants (grid).
  case iq2_xxs = 16
  /// Importance-matrix 2-bit quants (grid, with scales).
  case iq2_xs = 17
  /// Importance-matrix 3-bit quants (grid).
  case iq3_xxs = 18
  /// Importance-matrix 1-bit quants.
  case iq1_s = 19
  /// 32 elements: 4-bit non-linear quants.
  case iq4_nl = 20
  /// Importance-matrix 3-bit quants (grid, with signs).
  case iq3_s = 21
  /// Importance-matrix 2-bit quants (grid, with signs).
  case iq2_s = 22
  /// 256-element super-blocks of 4-bit non-linear quants.
  case iq4_xs = 23
  /// 8-bit signed integer.
  case i8 = 24
  /// 16-bit signed integer.
  case i16 = 25
  /// 32-bit signed integer.
  case i32 = 26
  /// 64-bit signed integer.
  case i64 = 27
  /// 64-bit IEEE float.
  case f64 = 28
  /// Importance-matrix 1-bit quants (with block scales).
  case iq1_m = 29
  /// bfloat16: the upper half of a 32-bit float.
  case bf16 = 30
  /// Ternary quants, 1.6 bits per element.
  case tq1_0 = 34
  /// Ternary quants, 2 bits per element.
  case tq2_0 = 35
  /// 32 elements: an 8-bit shared exponent and 4-bit floats (OCP MX).
  case mxfp4 = 39
  /// 64 elements: four 8-bit scales and 4-bit floats.
  case nvfp4 = 40
  /// 128 elements: a float16 scale and 1-bit quants.
  case q1_0 = 41

  /// Elements and bytes per block of each type, as in the `gguf` package's `GGML_QUANT_SIZES`.
  private static let layouts: [GGMLType: (elements: Int, bytes: Int)] = [
    .f32: (1, 4), .f16: (1, 2), .bf16: (1, 2), .f64: (1, 8),
    .i8: (1, 1), .i16: (1, 2), .i32: (1, 4), .i64: (1, 8),
    .q4_0: (32, 18), .q4_1: (32, 20), .q5_0: (32, 22), .q5_1: (32, 24), .q8_0: (32, 34), .q8_1: (32, 40),
    .q2_K: (256, 84), .q3_K: (256, 110), .q4_K: (256, 144), .q5_K: (256, 176), .q6_K: (256, 210), .q8_K: (256, 292),
    .iq2_xxs: (256, 66), .iq2_xs: (256, 74), .iq3_xxs: (256, 98), .iq1_s: (256, 50), .iq4_nl: (32, 18),
    .iq3_s: (256, 110), .iq2_s: (256, 82), .iq4_xs: (256, 136), .iq1_m: (256, 56),
    .tq1_0: (256, 54), .tq2_0: (256, 66), .mxfp4: (32, 17), .nvfp4: (64, 36), .q1_0: (128, 18),
  ]

  /// Elements per block (1 for plain types, 32 or 256 for most quantized ones).
  public var blockElements: Int { Self.layouts[self]!.elements }

  /// Bytes per block.
  public var blockBytes: Int { Self.layouts[self]!.bytes }

  /// ggml's name for the type (`q4_K`, `bf16`), as llama.cpp prints it.
  public var name: String { "\(self)" }

  /// Whether ``GGUFFile/floatRows(_:rows:)`` and ``GGUFFile/floatSlice(_:rows:columns:)`` can
  /// turn this type into float32.
  public var canDequantize: Bool { GGMLDequantize.function(for: self) != nil }
}
