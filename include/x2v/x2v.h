/* x2v C API: generate a Wan video from a program in any language (Python ctypes/cffi, the ComfyUI
 * nodes, Go, Rust, ...). Plain C99: opaque handles, no C++ types, no exception crosses it.
 *
 *   x2v_options* o = x2v_options_new();
 *   x2v_options_set_string(o, "model_dir", "Wan2.1-T2V-1.3B");
 *   x2v_options_set_string(o, "prompt", "a red fox running through snow");
 *   x2v_options_set_string(o, "size", "832x480");
 *   x2v_options_set_string(o, "output", "fox.mp4");
 *   x2v_result* r = NULL;
 *   char err[1024];
 *   int rc = x2v_generate(o, NULL, NULL, &r, err, sizeof err);
 *   if (rc != X2V_OK) fprintf(stderr, "%s: %s\n", x2v_status_name(rc), err);
 *   else printf("%s\n", x2v_result_output(r, 0));
 *   x2v_result_free(r);
 *   x2v_options_free(o);
 *
 * Options. The keys are the CLI's option names with '_' for '-' ("model_dir", "negative_prompt",
 * "guide_scale"; "model-dir" and "--model-dir" are accepted too):
 *   strings  task (t2v|i2v), model_dir, dit, dit_config, t5, tokenizer, clip, clip_config, vae,
 *            prompt, negative_prompt, image, solver (unipc|dpm++|euler), text_embeddings,
 *            clip_embeddings, noise, output, output_tensor, device (cpu|cuda),
 *            config (a LightX2V-style JSON file, as --config), size ("832x480"),
 *            step_list ("1000,750,500,250")
 *   integers width, height, max_area, frames, steps, seed (negative: random), fps
 *   numbers  shift, guide_scale
 *   booleans enable_cfg, demo (build the tiny random demo model and run it; no download)
 * x2v_options_set_string accepts every key (numbers and booleans as text: "17", "5.0", "true");
 * x2v_options_set_int accepts integer, number and boolean keys; x2v_options_set_double number keys,
 * and integer keys when the value is a whole number. A setter refuses an unknown key or a value of
 * the wrong type at once (X2V_ERR_INVALID_ARGUMENT). Whether a value is acceptable (a size that is
 * a multiple of 16, 4n+1 frames, a known solver, files that exist, ...) is checked in one place,
 * the pipeline's, when x2v_generate runs, before any long work: the CLI, the server and this API
 * refuse the same requests with the same messages. Defaults are the CLI's (and the reference's).
 *
 * x2v_options_set_json takes a JSON object with the keys above and, in the same object, the keys
 * of LightX2V's config files (infer_steps, sample_shift, sample_guide_scale, enable_cfg,
 * denoising_step_list, target_height, target_width, target_video_length, ...). As on the command
 * line, a key of the list above wins over a LightX2V key for the same setting; LightX2V keys x2v
 * does not apply are reported as warnings in the result (x2v_result_warning), not refused.
 *
 * Status codes are the CLI's exit codes (x2v generate), plus X2V_ERR_CANCELLED.
 *
 * Ownership: every handle is created and freed by this library (x2v_*_new / x2v_generate, and
 * x2v_*_free, which accept NULL). Strings passed in are copied; strings returned are owned by the
 * handle they come from and stay valid until it is freed (x2v_last_error: until the next x2v call
 * on the same thread).
 *
 * Threads: any function may be called from any thread. An options handle must not be modified
 * while another thread uses it; distinct handles are independent, and one handle may be read by
 * several x2v_generate calls at once. x2v_generate calls run one at a time in a process (a second
 * call waits for the first to finish): a generation uses every core and the whole GPU. The progress
 * callback runs on the thread that called x2v_generate, and must not call x2v_generate itself.
 */
#ifndef X2V_X2V_H
#define X2V_X2V_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raised when a function's signature or meaning changes. */
#define X2V_API_VERSION 1

enum x2v_status_code {
  X2V_OK = 0,
  X2V_ERR_INVALID_ARGUMENT = 2, /* a bad option or request */
  X2V_ERR_NOT_FOUND = 3,        /* a file (or a tensor in it) that should be there is not */
  X2V_ERR_BAD_FILE = 4,         /* a file that exists but is malformed */
  X2V_ERR_UNSUPPORTED = 5,      /* a valid thing x2v does not handle */
  X2V_ERR_IO = 6,               /* the OS refused (permissions, disk full, ...) */
  X2V_ERR_OUT_OF_MEMORY = 7,    /* host or device memory */
  X2V_ERR_DEVICE = 8,           /* a CUDA / driver error */
  X2V_ERR_INTERNAL = 70,        /* a bug in x2v */
  X2V_ERR_CANCELLED = 130       /* the progress callback asked to stop */
};

/* "0.1.0". Static storage. */
const char* x2v_version(void);
/* "ok", "invalid argument", "not found", ...; "unknown" for other values. Static storage. */
const char* x2v_status_name(int status);
/* The message of the last failed x2v call on this thread ("" if none failed yet). Valid until the
 * next x2v call on this thread. */
const char* x2v_last_error(void);

/* ---- options */
typedef struct x2v_options x2v_options;

/* NULL only if out of memory. */
x2v_options* x2v_options_new(void);
void x2v_options_free(x2v_options* options);
/* Each returns X2V_OK or X2V_ERR_INVALID_ARGUMENT (the message in x2v_last_error). */
int x2v_options_set_string(x2v_options* options, const char* key, const char* value);
int x2v_options_set_int(x2v_options* options, const char* key, int64_t value);
int x2v_options_set_double(x2v_options* options, const char* key, double value);
/* Puts the key back to its default. */
int x2v_options_unset(x2v_options* options, const char* key);
/* A JSON object of options (see above); its keys are applied in order, over earlier settings, and
 * null puts a key back to its default. LightX2V keys are checked as they are set, by the pipeline's
 * config reader: X2V_OK, X2V_ERR_INVALID_ARGUMENT, or X2V_ERR_UNSUPPORTED (say "model_cls":
 * "wan2.2_moe"). On failure the handle is left as it was. */
int x2v_options_set_json(x2v_options* options, const char* json);

/* ---- progress */
enum x2v_progress_event {
  X2V_PROGRESS_STAGE_BEGIN = 0, /* step 0; total: the steps to come (0 if unknown) */
  X2V_PROGRESS_STEP = 1,        /* step of total steps of the stage are done (1 after the first) */
  X2V_PROGRESS_STAGE_END = 2    /* step = total = the steps done */
};
/* `stage` is the stage's name ("text encoder", "denoise", "VAE decode", ...; valid during the call);
 * `seconds` the time since the stage began. Return 0 to go on; any other value cancels the
 * generation at this point: x2v_generate then returns X2V_ERR_CANCELLED and writes no output. A
 * stage's end cannot be stopped: a request returned for X2V_PROGRESS_STAGE_END takes effect at the
 * next STAGE_BEGIN or STEP event, and is dropped if none follows (the outputs are then complete). */
typedef int (*x2v_progress_fn)(void* user_data, int event, const char* stage, int64_t step, int64_t total,
                               double seconds);

/* ---- generation */
typedef struct x2v_result x2v_result;

/* Runs a generation to the end. `progress` may be NULL. On success, when `result` is not NULL,
 * *result receives a handle to free with x2v_result_free. On failure *result is set to NULL, no
 * output file exists, and the message is copied (cut to fit, always NUL-terminated) into `error`
 * when it is not NULL and `error_size` > 0, and is also in x2v_last_error(). */
int x2v_generate(const x2v_options* options, x2v_progress_fn progress, void* user_data, x2v_result** result,
                 char* error, size_t error_size);

/* Asks the generation running now (in any thread) to stop at its next step or VAE chunk; its
 * x2v_generate then returns X2V_ERR_CANCELLED and writes nothing. Returns 1 if a generation was
 * running, 0 if none was (a later one is not affected). Callable from any thread, including the
 * progress callback; not from a signal handler. */
int x2v_cancel(void);

void x2v_result_free(x2v_result* result);
/* The files written (the video file or frame folder, the output tensor), in order. */
size_t x2v_result_output_count(const x2v_result* result);
const char* x2v_result_output(const x2v_result* result, size_t i); /* NULL if i is out of range */
/* Every timed stage, in the order it finished. */
size_t x2v_result_stage_count(const x2v_result* result);
const char* x2v_result_stage_name(const x2v_result* result, size_t i); /* NULL if out of range */
double x2v_result_stage_seconds(const x2v_result* result, size_t i);   /* -1 if out of range */
/* Warnings about the options (LightX2V keys not applied, ...). */
size_t x2v_result_warning_count(const x2v_result* result);
const char* x2v_result_warning(const x2v_result* result, size_t i); /* NULL if out of range */
int x2v_result_width(const x2v_result* result);
int x2v_result_height(const x2v_result* result);
int x2v_result_frames(const x2v_result* result);
int x2v_result_fps(const x2v_result* result);
uint64_t x2v_result_seed(const x2v_result* result); /* the seed used (drawn when none was given) */
int64_t x2v_result_peak_host_bytes(const x2v_result* result);   /* peak resident memory of the process */
int64_t x2v_result_peak_device_bytes(const x2v_result* result); /* 0 when nothing ran on a GPU */

#ifdef __cplusplus
}
#endif

#endif /* X2V_X2V_H */
