/*
 * The replay driver shared by the fuzz targets: without libFuzzer, run
 * LLVMFuzzerTestOneInput once on each file named on the command line (CTest
 * does this over the corpora, so inputs that once crashed stay fixed).
 * Include it once, after the target's LLVMFuzzerTestOneInput.
 */
#ifndef CASE_LIBFUZZER
#include <stdio.h>

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "%s: cannot open\n", argv[i]);
      return 1;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
  }
  printf("replayed %d input(s)\n", argc - 1);
  return 0;
}
#endif
