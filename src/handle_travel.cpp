// A Connection end as a launch argument (mp/detail/handle_codec.hpp): its
// transport's travel hook (ConnectionCore::travel) gives the fds, metadata and
// rebuild factory; the factory travels as a code address (launch.hpp).
//
// Bytes: CodeAddress of the factory, u32 fd count, u32 fd index per fd (in the
// launch's fd channel), u64 metadata size, the metadata.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mp/detail/codec_fds.hpp"
#include "mp/detail/connection_core.hpp"
#include "mp/detail/handle_codec.hpp"
#include "mp/detail/launch.hpp"
#include "mp/errors.hpp"

namespace mp::detail {

void put_connection(Writer& writer, const std::shared_ptr<ConnectionCore>& core, const char* type) {
  OutgoingFds& fds = outgoing_fds(writer, type);
  if (!core) throw ValueError(std::string(type) + ": this Connection handle was moved from");
  if (core->closed()) throw ValueError(std::string(type) + ": the connection is closed");
  ConnectionTravel travel;
  if (!core->travel(travel) || travel.rebuild == nullptr)
    throw ProcessError(
        std::string(type) +
        ": this connection's transport cannot travel to a process started by forkserver or spawn "
        "(use StartMethod::fork)");
  const CodeAddress factory = code_address_of(reinterpret_cast<const void*>(travel.rebuild));
  if (factory.object == UINT32_MAX)
    throw ProcessError(std::string(type) + ": its transport's rebuild function is in no loaded object");
  writer.bytes(&factory, sizeof factory);
  writer.scalar(static_cast<std::uint32_t>(travel.fds.size()));
  for (int fd : travel.fds) writer.scalar(fds.add(fd));
  writer.length(travel.metadata.size());
  writer.bytes(travel.metadata.data(), travel.metadata.size());
}

std::shared_ptr<ConnectionCore> take_connection(Reader& reader, const char* type) {
  IncomingFds& fds = incoming_fds(reader, type);
  CodeAddress factory;
  reader.bytes(&factory, sizeof factory, type);
  const auto count = reader.scalar<std::uint32_t>("fd count");
  if (count > reader.remaining() / sizeof(std::uint32_t)) reader.fail("fd count exceeds the bytes left");
  std::vector<UniqueFd> received;
  received.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i)
    received.push_back(fds.take(reader.scalar<std::uint32_t>("fd"), type));
  const std::size_t metadata_size = reader.length();
  const std::span<const std::byte> metadata = reader.take(metadata_size, "metadata");
  const void* pointer = code_pointer_from(factory);
  if (pointer == nullptr) reader.fail("the connection's rebuild function is not in this program");
  auto rebuild = reinterpret_cast<ConnectionTravel::Rebuild>(const_cast<void*>(pointer));
  std::shared_ptr<ConnectionCore> core = rebuild(std::span<UniqueFd>(received), metadata);
  if (!core) reader.fail("the connection's transport could not rebuild the end");
  return core;
}

}  // namespace mp::detail
