// names_workload.cc -- a C++ program (g++ -O2, no frame pointers) whose
// functions have mangled names of several kinds: a member function of a
// class template in a namespace, a const member taking a reference, a
// function in an anonymous namespace.  e2e.agent_names checks that
// firn-agent's profile names them as `nm -C` does and keeps the mangled
// name as the function's system_name.
//
//   names_workload [SECONDS]   spins until killed (or for SECONDS)
//
// Prints "ready PID" once spinning.  The hot chain is
//   main -> firn_names::Worker::run(int) -> (anonymous namespace)::step(...)
//        -> firn_names::Mixer<unsigned long>::spin(unsigned long) const
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <unistd.h>

#define FRAME __attribute__((noinline, noclone))

namespace firn_names {

template <typename T> struct Mixer {
    T mult;
    FRAME T spin(T x) const;
};

template <typename T> T Mixer<T>::spin(T x) const
{
    for (int i = 0; i < 20000; i++)
        x = x * mult + 1442695040888963407ULL;
    return x;
}

template struct Mixer<unsigned long>;

class Worker {
public:
    explicit Worker(unsigned long m) : mixer{m} {}
    FRAME std::uint64_t run(int rounds);

private:
    Mixer<unsigned long> mixer;
};

}  // namespace firn_names

namespace {
volatile std::uint64_t sink;

FRAME std::uint64_t step(const firn_names::Mixer<unsigned long> &m, std::uint64_t x)
{
    std::uint64_t y = m.spin(x);
    sink += y;   // the call above is no tail call
    return y ^ x;
}
}  // namespace

std::uint64_t firn_names::Worker::run(int rounds)
{
    std::uint64_t x = 1;
    for (int i = 0; i < rounds; i++)
        x = step(mixer, x) + 1;
    return x;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? std::atof(argv[1]) : 0;
    std::printf("ready %d\n", (int)getpid());
    std::fflush(stdout);
    firn_names::Worker w(6364136223846793005ULL);
    std::time_t end = std::time(nullptr) + (std::time_t)seconds;
    while (seconds <= 0 || std::time(nullptr) < end)
        sink += w.run(100);
    return 0;
}
