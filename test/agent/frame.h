/* frame.h -- FRAME, for the functions of the agent's test workloads that
 * must stay frames of their own: out of line, and (GCC) not cloned into a
 * renamed copy such as unwind_compare.constprop.0, so stacks keep the
 * names the tests expect. */
#ifndef FIRN_TEST_AGENT_FRAME_H
#define FIRN_TEST_AGENT_FRAME_H

#ifdef __clang__
#define FRAME __attribute__((noinline))
#else
#define FRAME __attribute__((noinline, noclone))
#endif

#endif
