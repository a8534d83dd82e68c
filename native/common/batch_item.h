// The plain objects a polled handle's batch hands to JavaScript (one per datagram or message).
#pragma once

#include <napi.h>

namespace triggerd {

// A defined (not assigned) property of a batch item, so setters on Object.prototype never run.
// The keys are made once per batch (each addon's ItemKeys) instead of once per item.
inline Napi::PropertyDescriptor Field(const Napi::String& key, napi_value value) {
  return Napi::PropertyDescriptor::Value(static_cast<napi_value>(key), value,
                                         napi_default_jsproperty);
}

}  // namespace triggerd
