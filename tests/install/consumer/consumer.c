/* A program outside the libcase tree: it sees only the installed header and
 * library, and checks that the library it runs with is the one it was built for. */
#include <libcase/libcase.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
  const char *v = case_libversion();
  if (v == NULL || strcmp(v, CASE_VERSION) != 0) {
    fprintf(stderr, "consumer: case_libversion() is \"%s\", header says \"%s\"\n",
            v ? v : "(null)", CASE_VERSION);
    return 1;
  }
  if (case_libversion_number() != CASE_VERSION_NUMBER) {
    fprintf(stderr, "consumer: case_libversion_number() is %d, header says %d\n",
            case_libversion_number(), CASE_VERSION_NUMBER);
    return 1;
  }
  printf("consumer: libcase %s\n", v);
  return 0;
}
