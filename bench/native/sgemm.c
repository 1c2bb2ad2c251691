/*
 * OpenBLAS baseline for bench/: y[M,N] = x[M,K] · W[N,K]ᵀ with cblas_sgemm, the same
 * layout as src/ops/linear.ts (x row-major, W in HF Linear layout [out, in]).
 *
 * Built on first use by bench/native.ts:  cc -O2 sgemm.c -o sgemm -lopenblas
 *
 *   sgemm bench M N K WARMUP REPS
 *       random x, W; WARMUP untimed calls, then REPS timed calls; prints one JSON line
 *       {"M":..,"N":..,"K":..,"threads":..,"ms":[...],"median_ms":..,"gflops":..}
 *       (gflops = 2·M·N·K / median time).
 *   sgemm run M N K X_FILE W_FILE Y_FILE
 *       reads raw little-endian f32 x [M,K] and W [N,K], writes y [M,N]: the reference
 *       the GPU result is validated against before it is timed.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void gemm(int M, int N, int K, const float *x, const float *w, float *y) {
  /* y = 1 · x · Wᵀ + 0 · y; lda = K (x row-major), ldb = K (W row-major [N,K], transposed) */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, w, K, 0.0f, y, N);
}

static float *alloc(size_t n) {
  float *p = malloc(n * sizeof(float));
  if (!p) { fprintf(stderr, "sgemm: out of memory (%zu floats)\n", n); exit(2); }
  return p;
}

static void read_file(const char *path, float *dst, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(2); }
  if (fread(dst, sizeof(float), n, f) != n) { fprintf(stderr, "sgemm: %s: short read (want %zu floats)\n", path, n); exit(2); }
  fclose(f);
}

static int cmp(const void *a, const void *b) {
  double d = *(const double *)a - *(const double *)b;
  return (d > 0) - (d < 0);
}

int main(int argc, char **argv) {
  if (argc >= 7 && strcmp(argv[1], "bench") == 0) {
    int M = atoi(argv[2]), N = atoi(argv[3]), K = atoi(argv[4]), warm = atoi(argv[5]), reps = atoi(argv[6]);
    if (M <= 0 || N <= 0 || K <= 0 || reps <= 0 || reps > 1000) { fprintf(stderr, "sgemm: bad arguments\n"); return 2; }
    float *x = alloc((size_t)M * K), *w = alloc((size_t)N * K), *y = alloc((size_t)M * N);
    unsigned s = 12345;
    for (size_t i = 0; i < (size_t)M * K; i++) { s = s * 1103515245u + 12345u; x[i] = (float)(s >> 8) / (1 << 24) * 2 - 1; }
    for (size_t i = 0; i < (size_t)N * K; i++) { s = s * 1103515245u + 12345u; w[i] = (float)(s >> 8) / (1 << 24) * 2 - 1; }
    for (int i = 0; i < warm; i++) gemm(M, N, K, x, w, y);
    double *ms = malloc(reps * sizeof(double)), *sorted = malloc(reps * sizeof(double));
    for (int i = 0; i < reps; i++) {
      double t = now_ms();
      gemm(M, N, K, x, w, y);
      ms[i] = sorted[i] = now_ms() - t;
    }
    qsort(sorted, reps, sizeof(double), cmp);
    double med = reps % 2 ? sorted[reps / 2] : (sorted[reps / 2 - 1] + sorted[reps / 2]) / 2;
    printf("{\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"ms\":[", M, N, K, openblas_get_num_threads());
    for (int i = 0; i < reps; i++) printf("%s%.4f", i ? "," : "", ms[i]);
    printf("],\"median_ms\":%.4f,\"gflops\":%.4f}\n", med, 2.0 * M * N * K / med / 1e6);
    return 0;
  }
  if (argc >= 8 && strcmp(argv[1], "run") == 0) {
    int M = atoi(argv[2]), N = atoi(argv[3]), K = atoi(argv[4]);
    if (M <= 0 || N <= 0 || K <= 0) { fprintf(stderr, "sgemm: bad sizes\n"); return 2; }
    float *x = alloc((size_t)M * K), *w = alloc((size_t)N * K), *y = alloc((size_t)M * N);
    read_file(argv[5], x, (size_t)M * K);
    read_file(argv[6], w, (size_t)N * K);
    gemm(M, N, K, x, w, y);
    FILE *f = fopen(argv[7], "wb");
    if (!f || fwrite(y, sizeof(float), (size_t)M * N, f) != (size_t)M * N) { perror(argv[7]); return 2; }
    fclose(f);
    return 0;
  }
  fprintf(stderr, "usage: sgemm bench M N K WARMUP REPS | sgemm run M N K X_FILE W_FILE Y_FILE\n");
  return 2;
}
