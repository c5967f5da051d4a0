// mail_senders — ten processes started, then all joined, as in
//
//   senders = [Process(target=send_mail, args=(i,)) for i in range(10)]
//   for p in senders: p.start()
//   for p in senders: p.join()
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "mp/process.hpp"

void send_mail(int number) {
  ::usleep(10000 * static_cast<unsigned>(10 - number));  // the later ones are quicker: the order varies
  std::printf("sender %d (%s) sent its mail\n", number, mp::current_process().name().c_str());
}

int main() {
  std::vector<mp::Process> senders;
  for (int i = 0; i < 10; ++i) senders.emplace_back(send_mail, i);
  for (auto& sender : senders) sender.start();
  std::printf("%zu senders started\n", senders.size());
  int ok = 0;
  for (auto& sender : senders) {
    sender.join();
    if (sender.exitcode() == 0) ++ok;
  }
  std::printf("all senders joined: %d of 10 exited with 0, %zu still active\n", ok,
              mp::active_children().size());
  return ok == 10 ? 0 : 1;
}
