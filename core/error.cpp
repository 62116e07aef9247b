#include "core/error.h"

#include <exception>

namespace pajama {

void rethrow_with_context(const std::string& context) {
  try {
    throw;
  } catch (const ConfigError& e) {
    throw ConfigError(e.fields(), context + e.what());
  } catch (const DataError& e) {
    throw DataError(context + e.what());
  } catch (const CheckpointError& e) {
    throw CheckpointError(context + e.what());
  } catch (const CommError& e) {
    throw CommError(context + e.what());
  } catch (const std::exception& e) {
    throw Error(context + e.what());
  }
}

}  // namespace pajama
