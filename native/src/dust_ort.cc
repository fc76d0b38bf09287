// dust_ort: the few ONNX Runtime primitives the native executor needs (src/engine/native-ort.ts is its typed face,
// src/engine/native-executor.ts its user), over ONNX Runtime's C API.
//
// - No link against ONNX Runtime: init() dlopen()s the libonnxruntime.so.1 that onnxruntime-node already loaded
//   (the loader returns that same copy), so the process holds one ONNX Runtime, one OrtEnv and one set of providers.
//   The binary needs no CUDA header or library: everything on a device goes through ONNX Runtime.
// - Memory: buffers on a session's device (ONNX Runtime's allocator for the session's OrtMemoryInfo, or host memory
//   on the CPU), tensor views over a buffer at a byte offset or over a JavaScript typed array, and copies between
//   views (CopyTensors, or memcpy when both sides are host memory).
// - Runs bind inputs and outputs to views (IoBinding), so a graph reads and writes device memory in place; a run
//   may name a CUDA graph id (run option gpu_graph_id), which ONNX Runtime captures on its first use.
//
// Every call is synchronous: the inference worker thread calls it, as onnxruntime-node's run() blocks that thread
// too. Errors become JavaScript exceptions carrying ONNX Runtime's error code and message.
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <napi.h>

#include "onnxruntime/onnxruntime_c_api.h"

namespace {

const OrtApi* ort = nullptr;
OrtEnv* ort_env = nullptr;
OrtMemoryInfo* host_info = nullptr;
std::string ort_version;
std::mutex init_mutex;

const char* ErrorCodeName(OrtErrorCode code) {
  switch (code) {
    case ORT_OK: return "ORT_OK";
    case ORT_FAIL: return "ORT_FAIL";
    case ORT_INVALID_ARGUMENT: return "ORT_INVALID_ARGUMENT";
    case ORT_NO_SUCHFILE: return "ORT_NO_SUCHFILE";
    case ORT_NO_MODEL: return "ORT_NO_MODEL";
    case ORT_ENGINE_ERROR: return "ORT_ENGINE_ERROR";
    case ORT_RUNTIME_EXCEPTION: return "ORT_RUNTIME_EXCEPTION";
    case ORT_INVALID_PROTOBUF: return "ORT_INVALID_PROTOBUF";
    case ORT_MODEL_LOADED: return "ORT_MODEL_LOADED";
    case ORT_NOT_IMPLEMENTED: return "ORT_NOT_IMPLEMENTED";
    case ORT_INVALID_GRAPH: return "ORT_INVALID_GRAPH";
    case ORT_EP_FAIL: return "ORT_EP_FAIL";
    default: return "ORT_UNKNOWN";
  }
}

// A JavaScript error with name OrtError, the message prefixed by what was being done, and ONNX Runtime's code.
[[noreturn]] void ThrowOrt(Napi::Env env, const std::string& what, OrtErrorCode code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, what + ": " + message);
  err.Set("name", Napi::String::New(env, "OrtError"));
  err.Set("code", Napi::String::New(env, ErrorCodeName(code)));
  err.Set("ortCode", Napi::Number::New(env, static_cast<double>(code)));
  throw err;
}

void Check(Napi::Env env, OrtStatus* status, const std::string& what) {
  if (status == nullptr) return;
  OrtErrorCode code = ort->GetErrorCode(status);
  std::string message = ort->GetErrorMessage(status);
  ort->ReleaseStatus(status);
  ThrowOrt(env, what, code, message);
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }

void RequireInit(Napi::Env env) {
  if (ort == nullptr) throw Napi::Error::New(env, "dust_ort: init() was not called");
}

struct DType {
  const char* name;
  ONNXTensorElementDataType type;
  size_t bytes;
};

const DType kDTypes[] = {
    {"float32", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, 4}, {"int64", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, 8},
    {"int32", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, 4},   {"float16", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, 2},
    {"uint8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, 1},   {"bool", ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, 1},
};

const DType& DTypeByName(Napi::Env env, const std::string& name) {
  for (const DType& d : kDTypes)
    if (name == d.name) return d;
  ThrowType(env, "dust_ort: unsupported dtype '" + name + "'");
}

const char* DTypeName(ONNXTensorElementDataType type) {
  for (const DType& d : kDTypes)
    if (type == d.type) return d.name;
  return "other";
}

// ---- sessions ---------------------------------------------------------------------------------------------------

struct SessionCore {
  OrtSession* session = nullptr;
  bool cuda = false;
  int device_id = 0;
  // The device's memory and ONNX Runtime's allocator for it (null on the CPU, where buffers are host memory).
  OrtMemoryInfo* device_info = nullptr;
  OrtAllocator* allocator = nullptr;

  ~SessionCore() {
    if (allocator != nullptr) ort->ReleaseAllocator(allocator);
    if (device_info != nullptr) ort->ReleaseMemoryInfo(device_info);
    if (session != nullptr) ort->ReleaseSession(session);
  }
};

// One allocation. A device buffer keeps its session (and so its allocator) alive.
struct BufferCore {
  void* data = nullptr;
  size_t bytes = 0;
  std::shared_ptr<SessionCore> owner;

  const OrtMemoryInfo* info() const { return owner && owner->device_info != nullptr ? owner->device_info : host_info; }
  bool host() const { return !owner || owner->device_info == nullptr; }

  ~BufferCore() {
    if (data == nullptr) return;
    if (owner && owner->allocator != nullptr) {
      if (OrtStatus* st = ort->AllocatorFree(owner->allocator, data)) ort->ReleaseStatus(st);
    } else {
      std::free(data);
    }
  }
};

class View;

// Each class tags its objects, so that an argument is checked to be one of them before it is unwrapped (a type tag
// is checked in constant time, where instanceof walks the prototype chain: copies check two per pair).
const napi_type_tag kSessionTag = {0x6475737473657373ULL, 0x696f6e0000000001ULL};
const napi_type_tag kBufferTag = {0x6475737462756666ULL, 0x6572000000000002ULL};
const napi_type_tag kViewTag = {0x6475737476696577ULL, 0x0000000000000003ULL};

template <typename T>
T* Unwrapped(Napi::Env env, Napi::Value v, const napi_type_tag* tag, const char* what) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(tag)) ThrowType(env, std::string("dust_ort: ") + what);
  return T::Unwrap(v.As<Napi::Object>());
}

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Session",
                       {InstanceMethod("inputs", &Session::Inputs), InstanceMethod("outputs", &Session::Outputs),
                        InstanceMethod("run", &Session::Run), InstanceMethod("release", &Session::Release),
                        InstanceAccessor("device", &Session::Device, nullptr)});
  }

  // new Session(path | bytes, { device: 'cpu' | 'cuda', threads, cudaGraph, deviceId, logSeverity, config })
  // config: ONNX Runtime session configuration entries ({ key: value }), added after the defaults below.
  explicit Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
    Napi::Env env = info.Env();
    info.This().As<Napi::Object>().TypeTag(&kSessionTag);
    RequireInit(env);
    if (!(info[0].IsString() || info[0].IsTypedArray()) || !info[1].IsObject()) ThrowType(env, "Session(path | bytes, options)");
    std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string("a model in memory");
    Napi::Object o = info[1].As<Napi::Object>();
    std::string device = o.Has("device") ? o.Get("device").ToString().Utf8Value() : "cpu";
    if (device != "cpu" && device != "cuda") ThrowType(env, "dust_ort: device must be 'cpu' or 'cuda', not '" + device + "'");
    int threads = o.Has("threads") ? o.Get("threads").ToNumber().Int32Value() : 1;
    bool cuda_graph = o.Has("cudaGraph") && o.Get("cudaGraph").ToBoolean().Value();
    int device_id = o.Has("deviceId") ? o.Get("deviceId").ToNumber().Int32Value() : 0;
    int log_severity = o.Has("logSeverity") ? o.Get("logSeverity").ToNumber().Int32Value() : -1;

    core_ = std::make_shared<SessionCore>();
    core_->cuda = device == "cuda";
    core_->device_id = device_id;

    OrtSessionOptions* opts = nullptr;
    Check(env, ort->CreateSessionOptions(&opts), "creating session options");
    std::unique_ptr<OrtSessionOptions, void (*)(OrtSessionOptions*)> opts_guard(opts, [](OrtSessionOptions* p) { ort->ReleaseSessionOptions(p); });
    // The same options as onnxruntime-node's sessions (onnx-executor.ts sessionOptions): all graph optimisations,
    // sequential execution, one inter-op thread, and intra-op threads that sleep instead of spinning.
    Check(env, ort->SetSessionGraphOptimizationLevel(opts, ORT_ENABLE_ALL), "setting the optimisation level");
    Check(env, ort->SetSessionExecutionMode(opts, ORT_SEQUENTIAL), "setting the execution mode");
    Check(env, ort->SetIntraOpNumThreads(opts, threads), "setting intra-op threads");
    Check(env, ort->SetInterOpNumThreads(opts, 1), "setting inter-op threads");
    Check(env, ort->AddSessionConfigEntry(opts, "session.intra_op.allow_spinning", "0"), "disabling spinning");
    if (log_severity >= 0) Check(env, ort->SetSessionLogSeverityLevel(opts, log_severity), "setting the log severity");
    if (o.Has("config") && o.Get("config").IsObject()) {
      Napi::Object config = o.Get("config").As<Napi::Object>();
      Napi::Array keys = config.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); i++) {
        std::string key = keys.Get(i).ToString();
        std::string value = config.Get(key).ToString();
        Check(env, ort->AddSessionConfigEntry(opts, key.c_str(), value.c_str()), "setting session option " + key);
      }
    }

    if (core_->cuda) {
      OrtCUDAProviderOptionsV2* cuda = nullptr;
      Check(env, ort->CreateCUDAProviderOptions(&cuda), "creating CUDA provider options");
      std::unique_ptr<OrtCUDAProviderOptionsV2, void (*)(OrtCUDAProviderOptionsV2*)> cuda_guard(
          cuda, [](OrtCUDAProviderOptionsV2* p) { ort->ReleaseCUDAProviderOptions(p); });
      std::string id = std::to_string(device_id);
      const char* keys[] = {"device_id", "enable_cuda_graph"};
      const char* values[] = {id.c_str(), cuda_graph ? "1" : "0"};
      Check(env, ort->UpdateCUDAProviderOptions(cuda, keys, values, 2), "setting CUDA provider options");
      Check(env, ort->SessionOptionsAppendExecutionProvider_CUDA_V2(opts, cuda), "adding the CUDA execution provider");
    }

    if (info[0].IsString()) {
      Check(env, ort->CreateSession(ort_env, path.c_str(), opts, &core_->session), "loading " + path);
    } else {
      Napi::TypedArray bytes = info[0].As<Napi::TypedArray>();
      const uint8_t* data = static_cast<const uint8_t*>(bytes.ArrayBuffer().Data()) + bytes.ByteOffset();
      Check(env, ort->CreateSessionFromArray(ort_env, data, bytes.ByteLength(), opts, &core_->session), "loading " + path);
    }

    if (core_->cuda) {
      Check(env, ort->CreateMemoryInfo("Cuda", OrtDeviceAllocator, device_id, OrtMemTypeDefault, &core_->device_info),
            "describing CUDA memory");
      Check(env, ort->CreateAllocator(core_->session, core_->device_info, &core_->allocator), "creating the CUDA allocator");
    }
  }

  std::shared_ptr<SessionCore> Core(Napi::Env env) const {
    if (!core_) throw Napi::Error::New(env, "dust_ort: the session was released");
    return core_;
  }

 private:
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), core_ && core_->cuda ? "cuda" : "cpu");
  }

  Napi::Value Metadata(Napi::Env env, bool inputs) {
    OrtSession* s = Core(env)->session;
    size_t count = 0;
    Check(env, inputs ? ort->SessionGetInputCount(s, &count) : ort->SessionGetOutputCount(s, &count), "counting graph values");
    OrtAllocator* alloc = nullptr;
    Check(env, ort->GetAllocatorWithDefaultOptions(&alloc), "getting the default allocator");
    Napi::Array out = Napi::Array::New(env, count);
    for (size_t i = 0; i < count; i++) {
      char* name = nullptr;
      Check(env, inputs ? ort->SessionGetInputName(s, i, alloc, &name) : ort->SessionGetOutputName(s, i, alloc, &name), "reading a name");
      Napi::Object m = Napi::Object::New(env);
      m.Set("name", Napi::String::New(env, name));
      if (OrtStatus* st = ort->AllocatorFree(alloc, name)) ort->ReleaseStatus(st);
      OrtTypeInfo* ti = nullptr;
      Check(env, inputs ? ort->SessionGetInputTypeInfo(s, i, &ti) : ort->SessionGetOutputTypeInfo(s, i, &ti), "reading a type");
      std::unique_ptr<OrtTypeInfo, void (*)(OrtTypeInfo*)> ti_guard(ti, [](OrtTypeInfo* p) { ort->ReleaseTypeInfo(p); });
      const OrtTensorTypeAndShapeInfo* tensor = nullptr;
      Check(env, ort->CastTypeInfoToTensorInfo(ti, &tensor), "reading a tensor type");
      Napi::Array shape = Napi::Array::New(env);
      if (tensor == nullptr) {
        m.Set("type", Napi::String::New(env, "non-tensor"));
      } else {
        ONNXTensorElementDataType et;
        Check(env, ort->GetTensorElementType(tensor, &et), "reading an element type");
        m.Set("type", Napi::String::New(env, DTypeName(et)));
        size_t rank = 0;
        Check(env, ort->GetDimensionsCount(tensor, &rank), "reading a rank");
        std::vector<int64_t> dims(rank);
        std::vector<const char*> symbols(rank);
        Check(env, ort->GetDimensions(tensor, dims.data(), rank), "reading dimensions");
        Check(env, ort->GetSymbolicDimensions(tensor, symbols.data(), rank), "reading symbolic dimensions");
        for (size_t d = 0; d < rank; d++) {
          // As onnxruntime-node reports them: a symbol's name, else the size.
          if (symbols[d] != nullptr && symbols[d][0] != '\0')
            shape.Set(d, Napi::String::New(env, symbols[d]));
          else
            shape.Set(d, Napi::Number::New(env, static_cast<double>(dims[d])));
        }
      }
      m.Set("shape", shape);
      out.Set(i, m);
    }
    return out;
  }

  Napi::Value Inputs(const Napi::CallbackInfo& info) { return Metadata(info.Env(), true); }
  Napi::Value Outputs(const Napi::CallbackInfo& info) { return Metadata(info.Env(), false); }

  // run({ name: Value }, { name: Value }, graphId?)
  Napi::Value Run(const Napi::CallbackInfo& info);

  Napi::Value Release(const Napi::CallbackInfo& info) {
    // Buffers allocated on this session keep its allocator (and the session) until they are released too.
    core_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<SessionCore> core_;
};

// ---- buffers and values -----------------------------------------------------------------------------------------

class Buffer : public Napi::ObjectWrap<Buffer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Buffer",
                       {InstanceMethod("release", &Buffer::Release), InstanceAccessor("bytes", &Buffer::Bytes, nullptr),
                        InstanceAccessor("host", &Buffer::Host, nullptr)});
  }

  // new Buffer(session, bytes): memory on the session's device. Host memory is zeroed; device memory is not (it is
  // reached only through ONNX Runtime: the caller zeroes it with a copy).
  explicit Buffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Buffer>(info) {
    Napi::Env env = info.Env();
    info.This().As<Napi::Object>().TypeTag(&kBufferTag);
    RequireInit(env);
    if (!info[0].IsObject() || !info[1].IsNumber()) ThrowType(env, "Buffer(session, bytes)");
    Session* session = Unwrapped<Session>(env, info[0], &kSessionTag, "a buffer is allocated on a Session");
    int64_t bytes = info[1].As<Napi::Number>().Int64Value();
    if (bytes <= 0) ThrowType(env, "dust_ort: a buffer needs a positive size");
    core_ = std::make_shared<BufferCore>();
    core_->bytes = static_cast<size_t>(bytes);
    std::shared_ptr<SessionCore> s = session->Core(env);
    if (s->allocator != nullptr) {
      core_->owner = s;
      Check(env, ort->AllocatorAlloc(s->allocator, core_->bytes, &core_->data), "allocating " + std::to_string(bytes) + " bytes on " + (s->cuda ? "cuda" : "cpu"));
      if (core_->data == nullptr) ThrowOrt(env, "allocating", ORT_FAIL, "the allocator returned no memory");
    } else {
      size_t rounded = (core_->bytes + 63) / 64 * 64;
      core_->data = std::aligned_alloc(64, rounded);
      if (core_->data == nullptr) ThrowOrt(env, "allocating " + std::to_string(bytes) + " bytes on cpu", ORT_FAIL, "out of memory");
      std::memset(core_->data, 0, rounded);
    }
  }

  std::shared_ptr<BufferCore> Core(Napi::Env env) const {
    if (!core_) throw Napi::Error::New(env, "dust_ort: the buffer was released");
    return core_;
  }

 private:
  Napi::Value Bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), core_ ? static_cast<double>(core_->bytes) : 0); }
  Napi::Value Host(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !core_ || core_->host()); }
  Napi::Value Release(const Napi::CallbackInfo& info) {
    core_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<BufferCore> core_;
};

// A tensor over memory it does not own: a buffer (kept alive) or a JavaScript typed array (referenced).
class View : public Napi::ObjectWrap<View> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Value", {InstanceMethod("release", &View::Release), InstanceAccessor("bytes", &View::Bytes, nullptr)});
  }

  // new Value(buffer | typedArray, byteOffset, dtype, shape)
  explicit View(const Napi::CallbackInfo& info) : Napi::ObjectWrap<View>(info) {
    Napi::Env env = info.Env();
    info.This().As<Napi::Object>().TypeTag(&kViewTag);
    RequireInit(env);
    if (!info[1].IsNumber() || !info[2].IsString() || !info[3].IsArray()) ThrowType(env, "Value(memory, byteOffset, dtype, shape)");
    int64_t offset = info[1].As<Napi::Number>().Int64Value();
    const DType& dt = DTypeByName(env, info[2].As<Napi::String>());
    Napi::Array shape = info[3].As<Napi::Array>();
    std::vector<int64_t> dims(shape.Length());
    int64_t count = 1;
    for (uint32_t i = 0; i < shape.Length(); i++) {
      Napi::Value d = shape.Get(i);
      if (!d.IsNumber() || d.As<Napi::Number>().Int64Value() < 0) ThrowType(env, "dust_ort: a shape holds sizes >= 0");
      dims[i] = d.As<Napi::Number>().Int64Value();
      count *= dims[i];
    }
    bytes_ = static_cast<size_t>(count) * dt.bytes;
    uint8_t* base = nullptr;
    size_t capacity = 0;
    const OrtMemoryInfo* mem = host_info;
    if (info[0].IsTypedArray()) {
      Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
      Napi::ArrayBuffer ab = ta.ArrayBuffer();
      base = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
      capacity = ta.ByteLength();
      array_ = Napi::Persistent(info[0].As<Napi::Object>());
      host_ = true;
    } else if (info[0].IsObject()) {
      Buffer* b = Unwrapped<Buffer>(env, info[0], &kBufferTag, "a value views a Buffer or a typed array");
      buffer_ = b->Core(env);
      base = static_cast<uint8_t*>(buffer_->data);
      capacity = buffer_->bytes;
      mem = buffer_->info();
      host_ = buffer_->host();
    } else {
      ThrowType(env, "dust_ort: a value views a Buffer or a typed array");
    }
    if (offset < 0 || static_cast<size_t>(offset) + bytes_ > capacity)
      throw Napi::RangeError::New(env, "dust_ort: a " + std::string(dt.name) + " view of " + std::to_string(bytes_) + " bytes at offset " +
                                           std::to_string(offset) + " does not fit in " + std::to_string(capacity) + " bytes");
    data_ = base + offset;
    Check(env, ort->CreateTensorWithDataAsOrtValue(mem, data_, bytes_, dims.data(), dims.size(), dt.type, &value_), "creating a tensor view");
  }

  ~View() override {
    if (value_ != nullptr) ort->ReleaseValue(value_);
  }

  OrtValue* Get(Napi::Env env) const {
    if (value_ == nullptr) throw Napi::Error::New(env, "dust_ort: the value was released");
    return value_;
  }
  bool host() const { return host_; }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  Napi::Value Bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(bytes_)); }
  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (value_ != nullptr) ort->ReleaseValue(value_);
    value_ = nullptr;
    buffer_.reset();
    array_.Reset();
    return info.Env().Undefined();
  }

  OrtValue* value_ = nullptr;
  std::shared_ptr<BufferCore> buffer_;
  Napi::ObjectReference array_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  bool host_ = true;
};

View* ValueArg(Napi::Env env, Napi::Value v, const std::string& what) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kViewTag)) ThrowType(env, "dust_ort: " + what + " is not a Value");
  return View::Unwrap(v.As<Napi::Object>());
}

Napi::Value Session::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<SessionCore> s = Core(env);
  if (!info[0].IsObject() || !info[1].IsObject()) ThrowType(env, "run(inputs, outputs, graphId?)");
  OrtIoBinding* binding = nullptr;
  Check(env, ort->CreateIoBinding(s->session, &binding), "creating an I/O binding");
  std::unique_ptr<OrtIoBinding, void (*)(OrtIoBinding*)> binding_guard(binding, [](OrtIoBinding* p) { ort->ReleaseIoBinding(p); });
  for (int side = 0; side < 2; side++) {
    Napi::Object map = info[side].As<Napi::Object>();
    Napi::Array names = map.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string name = names.Get(i).ToString();
      View* v = ValueArg(env, map.Get(name), (side == 0 ? "input " : "output ") + name);
      Check(env, side == 0 ? ort->BindInput(binding, name.c_str(), v->Get(env)) : ort->BindOutput(binding, name.c_str(), v->Get(env)),
            "binding " + name);
    }
  }
  OrtRunOptions* run_options = nullptr;
  Check(env, ort->CreateRunOptions(&run_options), "creating run options");
  std::unique_ptr<OrtRunOptions, void (*)(OrtRunOptions*)> run_guard(run_options, [](OrtRunOptions* p) { ort->ReleaseRunOptions(p); });
  if (info.Length() > 2 && info[2].IsNumber()) {
    std::string id = std::to_string(info[2].As<Napi::Number>().Int32Value());
    Check(env, ort->AddRunConfigEntry(run_options, "gpu_graph_id", id.c_str()), "setting the CUDA graph id");
  }
  // RunWithBinding may return before the device has finished (a replayed CUDA graph is only launched), and the
  // caller's next copy (CopyTensors, on another stream) must see the inputs written and the outputs complete:
  // both sides are synchronised explicitly, as ONNX Runtime's I/O binding documentation asks.
  Check(env, ort->SynchronizeBoundInputs(binding), "synchronising the bound inputs");
  Check(env, ort->RunWithBinding(s->session, run_options, binding), "run");
  Check(env, ort->SynchronizeBoundOutputs(binding), "synchronising the bound outputs");
  return env.Undefined();
}

// ---- module functions -------------------------------------------------------------------------------------------

// init(libonnxruntimePath) -> { version, apiVersion }. Idempotent; a second path must name the same library.
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "init(libonnxruntimePath)");
  std::string path = info[0].As<Napi::String>();
  std::lock_guard<std::mutex> lock(init_mutex);
  if (ort == nullptr) {
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) ThrowOrt(env, "loading ONNX Runtime", ORT_NO_SUCHFILE, dlerror());
    using GetApiBase = const OrtApiBase* (*)();
    auto get_base = reinterpret_cast<GetApiBase>(dlsym(lib, "OrtGetApiBase"));
    if (get_base == nullptr) ThrowOrt(env, "loading ONNX Runtime", ORT_FAIL, path + " has no OrtGetApiBase");
    const OrtApiBase* base = get_base();
    const OrtApi* api = base->GetApi(ORT_API_VERSION);
    if (api == nullptr)
      ThrowOrt(env, "loading ONNX Runtime", ORT_FAIL,
               std::string(path) + " is ONNX Runtime " + base->GetVersionString() + ", which lacks API version " + std::to_string(ORT_API_VERSION));
    OrtEnv* e = nullptr;
    // The process's one OrtEnv: ONNX Runtime hands back onnxruntime-node's when it made one first.
    OrtStatus* st = api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "dust-serve", &e);
    if (st != nullptr) {
      std::string message = api->GetErrorMessage(st);
      OrtErrorCode code = api->GetErrorCode(st);
      api->ReleaseStatus(st);
      ThrowOrt(env, "creating the ONNX Runtime environment", code, message);
    }
    OrtMemoryInfo* host = nullptr;
    st = api->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &host);
    if (st != nullptr) {
      api->ReleaseStatus(st);
      ThrowOrt(env, "describing host memory", ORT_FAIL, "CreateCpuMemoryInfo failed");
    }
    ort = api;
    ort_env = e;
    host_info = host;
    ort_version = base->GetVersionString();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", Napi::String::New(env, ort_version));
  out.Set("apiVersion", Napi::Number::New(env, ORT_API_VERSION));
  return out;
}

// registerProviderLibrary(name, path): lets CopyTensors reach a device whose provider came in as a library.
Napi::Value RegisterProviderLibrary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireInit(env);
  if (!info[0].IsString() || !info[1].IsString()) ThrowType(env, "registerProviderLibrary(name, path)");
  std::string name = info[0].As<Napi::String>();
  std::string path = info[1].As<Napi::String>();
  Check(env, ort->RegisterExecutionProviderLibrary(ort_env, name.c_str(), path.c_str()), "registering " + path);
  return env.Undefined();
}

// copy([[src, dst], ...]): equal byte sizes; memcpy between host views, CopyTensors otherwise.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireInit(env);
  if (!info[0].IsArray()) ThrowType(env, "copy([[src, dst], ...])");
  Napi::Array pairs = info[0].As<Napi::Array>();
  std::vector<const OrtValue*> srcs;
  std::vector<OrtValue*> dsts;
  for (uint32_t i = 0; i < pairs.Length(); i++) {
    Napi::Value p = pairs.Get(i);
    if (!p.IsArray() || p.As<Napi::Array>().Length() != 2) ThrowType(env, "copy: each pair is [src, dst]");
    View* src = ValueArg(env, p.As<Napi::Array>().Get(0u), "a copy's source");
    View* dst = ValueArg(env, p.As<Napi::Array>().Get(1u), "a copy's destination");
    if (src->bytes() != dst->bytes())
      throw Napi::RangeError::New(env, "dust_ort: copy of " + std::to_string(src->bytes()) + " bytes into " + std::to_string(dst->bytes()));
    if (src->bytes() == 0) continue;
    if (src->host() && dst->host()) {
      std::memmove(dst->data(), src->data(), src->bytes());
    } else {
      srcs.push_back(src->Get(env));
      dsts.push_back(dst->Get(env));
    }
  }
  // CopyTensors takes one source and one destination device per call: the caller groups its pairs so.
  if (!srcs.empty()) Check(env, ort->CopyTensors(ort_env, srcs.data(), dsts.data(), nullptr, srcs.size()), "copying tensors");
  return env.Undefined();
}

// axpyRows(x, v, dt, out): out[r, j] = x[r, j] + dt[r] * v[r, j] over float32 host views of [rows, len] (dt has
// rows values; out may be x), each value computed in double and rounded once, as JavaScript's Float32Array
// arithmetic does (src/sampling/schedule.ts applyStep). The Euler update of a step on host memory, where running a
// graph for it would cost more than the arithmetic; device memory takes the update graph instead.
Napi::Value AxpyRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireInit(env);
  View* x = ValueArg(env, info[0], "axpyRows' x");
  View* v = ValueArg(env, info[1], "axpyRows' v");
  View* dt = ValueArg(env, info[2], "axpyRows' dt");
  View* out = ValueArg(env, info[3], "axpyRows' out");
  if (!x->host() || !v->host() || !dt->host() || !out->host()) ThrowType(env, "dust_ort: axpyRows works on host memory only");
  size_t rows = dt->bytes() / sizeof(float);
  size_t n = x->bytes() / sizeof(float);
  if (rows == 0 || n % rows != 0 || v->bytes() != x->bytes() || out->bytes() != x->bytes())
    throw Napi::RangeError::New(env, "dust_ort: axpyRows needs x, v and out of rows * len float32 values and dt of rows");
  size_t len = n / rows;
  const float* xs = static_cast<const float*>(x->data());
  const float* vs = static_cast<const float*>(v->data());
  const float* ds = static_cast<const float*>(dt->data());
  float* os = static_cast<float*>(out->data());
  for (size_t r = 0; r < rows; r++) {
    const double d = ds[r];
    for (size_t j = r * len; j < (r + 1) * len; j++) os[j] = static_cast<float>(static_cast<double>(xs[j]) + d * static_cast<double>(vs[j]));
  }
  return env.Undefined();
}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  Napi::Function session = Session::Define(env);
  Napi::Function buffer = Buffer::Define(env);
  Napi::Function value = View::Define(env);
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("registerProviderLibrary", Napi::Function::New(env, RegisterProviderLibrary));
  exports.Set("copy", Napi::Function::New(env, Copy));
  exports.Set("axpyRows", Napi::Function::New(env, AxpyRows));
  exports.Set("Session", session);
  exports.Set("Buffer", buffer);
  exports.Set("Value", value);
  return exports;
}

}  // namespace

NODE_API_MODULE(dust_ort, Module)
