/* heap_graph — a large live heap for the leak-scan benchmark: N blocks of
 * 48 bytes linked as a binary tree (node i's children are 2i+1 and 2i+2),
 * its root in a global. The subtree under the root's right child is cut
 * off before exit: that child is definitely lost and its descendants
 * indirectly lost; the left half is still reachable. N defaults to 1M. */
#include <stdio.h>
#include <stdlib.h>

struct node { struct node *left, *right; long payload[4]; };

static struct node *volatile root;

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  if (n < 3) n = 3;
  struct node **all = malloc((size_t)n * sizeof *all);
  if (all == NULL) return 1;
  for (long i = 0; i < n; i++) {
    all[i] = calloc(1, sizeof **all);
    if (all[i] == NULL) return 1;
    all[i]->payload[0] = i;
  }
  for (long i = 0; i < n; i++) {
    if (2 * i + 1 < n) all[i]->left = all[2 * i + 1];
    if (2 * i + 2 < n) all[i]->right = all[2 * i + 2];
  }
  root = all[0];
  root->right = NULL; /* the right half is lost */
  free(all);
  printf("heap_graph: %ld blocks\n", n);
  return 0;
}
