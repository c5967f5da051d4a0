// The ticket office: several processes sell from one fixed stock of tickets,
// each sale made under an mp::Lock held with std::lock_guard (Python's
// `with lock:`). However the sellers interleave, no ticket is sold twice and
// the office never oversells.
//
// Python:
//   def seller(lock, stock, sold, name):
//       while True:
//           with lock:
//               if stock.value == 0: return
//               stock.value -= 1
//               sold[name] += 1
//   lock = Lock(); stock = Value('i', 1000, lock=False); sold = Array('i', 4, lock=False)
//   sellers = [Process(target=seller, args=(lock, stock, sold, i)) for i in range(4)]
#include <cstdio>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#include "mp/barrier.hpp"
#include "mp/lock.hpp"
#include "mp/process.hpp"
#include "mp/shared.hpp"

namespace {

constexpr int kTickets = 1000;
constexpr int kSellers = 4;

void seller(mp::Lock lock, mp::Barrier opening, mp::Value<int> stock, mp::Array<int> sold, int me) {
  (void)opening.wait();  // every seller opens at the same moment
  for (;;) {
    {
      std::lock_guard hold(lock);
      if (stock.value() == 0) return;  // sold out
      stock.value() -= 1;              // the check and the sale are one step
      sold[static_cast<std::size_t>(me)] += 1;
    }
    std::this_thread::yield();  // print the ticket, outside the lock
  }
}

}  // namespace

int main() {
  mp::Lock lock;
  mp::Value<int> stock(kTickets);
  mp::Array<int> sold(kSellers, 0);
  mp::Barrier opening(kSellers);
  std::vector<mp::Process> sellers;
  for (int i = 0; i < kSellers; ++i) sellers.emplace_back(seller, lock, opening, stock, sold, i);
  for (auto& p : sellers) p.start();
  for (auto& p : sellers) p.join();

  const int total = std::accumulate(sold.begin(), sold.end(), 0);
  for (int i = 0; i < kSellers; ++i) std::printf("seller %d sold %d\n", i, sold[static_cast<std::size_t>(i)]);
  std::printf("tickets sold: %d of %d, left: %d\n", total, kTickets, stock.value());
  std::printf(total == kTickets && stock.value() == 0 ? "never oversold\n" : "OVERSOLD\n");
  return total == kTickets && stock.value() == 0 ? 0 : 1;
}
