import Foundation
import IGPTFuzzHarness

/// libFuzzer's entry: the bytes go to the harness IGPT_FUZZ_TARGET names (Tests/FuzzHarness).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  Harness.chosen.run(bytes.map { Data(bytes: $0, count: size) } ?? Data())
  return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The executable's main (SwiftPM names it after the target): libFuzzer's driver.
@_cdecl("igpt_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
  var c = argc, v = argv
  return runDriver(&c, &v, fuzzOne)
}
