#include "sgemm.h"

#include "pack.h"

namespace ganfleet {
namespace {

// K is one segment. A untransposed is read row by row in place ("rows" mode);
// transposed, each k holds the tile's rows side by side ("panel" mode).
struct MatrixProblem {
  const MatrixArgs& x;
  int m, n;
  int nseg = 1, seglen;
  bool a_panel;
  std::ptrdiff_t a_stride;

  explicit MatrixProblem(const MatrixArgs& args)
      : x(args), m(args.m), n(args.n), seglen(args.k), a_panel(args.trans_a), a_stride(args.lda) {}

  void ARows(int m0, int mr, const KBlock& kb, const float** out, int) const {
    for (int i = 0; i < mr; ++i) out[i] = x.a + (m0 + i) * x.lda + kb.off;
  }
  const float* APanel(int m0, const KBlock& kb) const { return x.a + kb.off * x.lda + m0; }
  void PackB(const KBlock& kb, int n0, int nc, int nr, float* dst) const {
    const std::size_t stride = static_cast<std::size_t>(kb.k()) * nr;
    if (x.trans_b) {
      PackCols(x.b + n0 * x.ldb + kb.off, x.ldb, kb.len, nc, nr, dst, stride);
    } else {
      PackRows(x.b + kb.off * x.ldb + n0, x.ldb, kb.len, nc, nr, dst, stride);
    }
  }
  void CRows(int m0, int mr, float** out) const {
    for (int i = 0; i < mr; ++i) out[i] = x.c + (m0 + i) * x.ldc;
  }
};

}  // namespace

void Sgemm(const MatrixArgs& args, const Epilogue& ep, Exec& ex) { RunGemm(MatrixProblem(args), ep, ex); }

}  // namespace ganfleet
