/// Limited-memory BFGS (Nocedal & Wright, algorithm 7.4) with a backtracking Armijo line
/// search, for smooth convex objectives such as L2-regularised logistic regression.
public struct LBFGS {
  public var history = 10
  public var maxIterations = 500
  /// Stop when the gradient's largest component falls below this.
  public var gradientTolerance = 1e-5
  /// Stop when the objective improves by less than this fraction.
  public var relativeTolerance = 1e-10

  public init() {}

  public struct Result {
    public var x: [Double]
    public var value: Double
    public var iterations: Int
    public var gradientMax: Double
    /// Whether it stopped on its own criteria (gradient, improvement, or a line search that
    /// cannot improve at floating-point precision), not at `maxIterations`.
    public var converged: Bool
  }

  /// Minimises f from x0; `f(x, &grad)` returns the value and writes the gradient.
  public func minimize(from x0: [Double], _ f: ([Double], inout [Double]) -> Double) -> Result {
    let n = x0.count
    var x = x0
    var g = [Double](repeating: 0, count: n)
    var value = f(x, &g)
    var s: [[Double]] = [], y: [[Double]] = [], rho: [Double] = []
    var iterations = 0
    var gNew = [Double](repeating: 0, count: n)
    while iterations < maxIterations {
      let gmax = g.reduce(0) { max($0, abs($1)) }
      if gmax < gradientTolerance { break }
      // Two-loop recursion: d = -H g.
      var q = g
      var alpha = [Double](repeating: 0, count: s.count)
      for i in stride(from: s.count - 1, through: 0, by: -1) {
        alpha[i] = rho[i] * dot(s[i], q)
        for j in 0..<n { q[j] -= alpha[i] * y[i][j] }
      }
      if let ys = s.indices.last {
        let gamma = dot(s[ys], y[ys]) / dot(y[ys], y[ys])
        for j in 0..<n { q[j] *= gamma }
      } else {
        let norm = dot(g, g).squareRoot()
        for j in 0..<n { q[j] /= max(norm, 1) }
      }
      for i in 0..<s.count {
        let beta = rho[i] * dot(y[i], q)
        for j in 0..<n { q[j] += s[i][j] * (alpha[i] - beta) }
      }
      var d = q.map { -$0 }
      var slope = dot(g, d)
      if slope >= 0 {  // not a descent direction (numerical trouble): restart along -g
        d = g.map { -$0 }
        slope = -dot(g, g)
        s = []; y = []; rho = []
      }
      // Backtracking line search (Armijo).
      var step = 1.0
      var xNew = x
      var valueNew = 0.0
      var accepted = false
      for _ in 0..<40 {
        for j in 0..<n { xNew[j] = x[j] + step * d[j] }
        valueNew = f(xNew, &gNew)
        if valueNew <= value + 1e-4 * step * slope { accepted = true; break }
        step *= 0.5
      }
      if !accepted { break }
      iterations += 1
      let sk = (0..<n).map { xNew[$0] - x[$0] }
      let yk = (0..<n).map { gNew[$0] - g[$0] }
      let sy = dot(sk, yk)
      if sy > 1e-12 {
        s.append(sk); y.append(yk); rho.append(1 / sy)
        if s.count > history { s.removeFirst(); y.removeFirst(); rho.removeFirst() }
      }
      let improvement = value - valueNew
      x = xNew
      g = gNew
      value = valueNew
      if improvement <= relativeTolerance * max(abs(value), 1) { break }
    }
    return Result(x: x, value: value, iterations: iterations, gradientMax: g.reduce(0) { max($0, abs($1)) },
                  converged: iterations < maxIterations)
  }

  private func dot(_ a: [Double], _ b: [Double]) -> Double {
    var s = 0.0
    for i in a.indices { s += a[i] * b[i] }
    return s
  }
}
