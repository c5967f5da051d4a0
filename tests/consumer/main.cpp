// A program outside mp's tree, built against an installed or embedded mp.
#include <mp/mp.hpp>

#include <cstdio>

int main() {
  mp::Lock lock;
  mp::Process child([](mp::Lock l) { std::lock_guard guard(l); }, lock);
  child.start();
  child.join();
  std::printf("mp %.*s\n", static_cast<int>(mp::version().size()), mp::version().data());
  std::printf(child.exitcode() == 0 ? "consumer ok\n" : "consumer failed\n");
  return child.exitcode() == 0 ? 0 : 1;
}
