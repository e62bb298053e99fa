/// An error printed as its message alone.
struct CleanError: Error, CustomStringConvertible {
  let description: String
  init(_ d: String) { description = d }
}
