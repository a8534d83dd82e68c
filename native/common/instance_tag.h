// Which objects an ObjectWrap class may unwrap. V8 refuses a method of the class called on a
// foreign `this` ("Illegal invocation"), but not an accessor: a getter taken off the prototype
// (Object.getOwnPropertyDescriptor(proto, 'closed').get) and called on an object that another
// class or addon wrapped got that object from napi_unwrap as if it were its own, and read (or
// closed) through the wrong type. Each class tags its instances in its constructor and shadows
// ObjectWrap<T>::Unwrap with UnwrapTagged, which node-addon-api's callbacks call as T::Unwrap.
#pragma once

#include <napi.h>

#include <string>

namespace triggerd {

// Marks `object` as an instance of the class `tag` names (napi_type_tag_object).
inline void TagInstance(Napi::Env env, Napi::Object object, const napi_type_tag* tag) {
  napi_status status = napi_type_tag_object(env, object, tag);
  NAPI_THROW_IF_FAILED_VOID(env, status);
}

// ObjectWrap<T>::Unwrap for objects tagged `tag` only; anything else is a TypeError
// (ERR_INVALID_THIS, as Node's own classes say it).
template <typename T>
T* UnwrapTagged(Napi::Object object, const napi_type_tag* tag, const char* class_name) {
  Napi::Env env = object.Env();
  bool tagged = false;
  napi_status status = napi_check_object_type_tag(env, object, tag, &tagged);
  if (status != napi_ok || !tagged) {
    Napi::TypeError error = Napi::TypeError::New(
        env, std::string("Value of \"this\" must be of type ") + class_name);
    error.Set("code", Napi::String::New(env, "ERR_INVALID_THIS"));
    throw error;
  }
  return Napi::ObjectWrap<T>::Unwrap(object);
}

}  // namespace triggerd
