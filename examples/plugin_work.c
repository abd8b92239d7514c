/* plugin_work — a plugin for the plugin example: loaded, run, unloaded. */
volatile unsigned long plugin_sink;

__attribute__((noinline)) unsigned long plugin_spin(unsigned long n) {
  unsigned long x = plugin_sink;
  for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1;
  plugin_sink = x;
  return x;
}
