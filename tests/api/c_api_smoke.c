/* The C API as a C program uses it. test_api.cpp compiles this file as C99 (cc -std=c99 -pedantic
 * -Werror) to prove the header and this usage are C, and includes it to run it. Each function
 * returns 0 on success, or a line number and a message in `msg`. */
#include <stdio.h>
#include <string.h>

#include "x2v/x2v.h"

#define SMOKE_CHECK(cond)                                                        \
  do {                                                                           \
    if (!(cond)) {                                                               \
      snprintf(msg, msg_size, "c_api_smoke.c:%d: %s (last error: %s)", __LINE__, \
               #cond, x2v_last_error());                                         \
      return __LINE__;                                                           \
    }                                                                            \
  } while (0)

struct smoke_progress {
  int events, steps, stage_ends;
  int64_t last_denoise_step;
  int steps_increase;
};

static int smoke_progress_cb(void* user_data, int event, const char* stage, int64_t step, int64_t total,
                             double seconds) {
  struct smoke_progress* p = (struct smoke_progress*)user_data;
  p->events++;
  if (event == X2V_PROGRESS_STAGE_END) p->stage_ends++;
  if (event == X2V_PROGRESS_STEP && strcmp(stage, "denoise") == 0) {
    p->steps++;
    if (step != p->last_denoise_step + 1 || total != 2 || seconds < 0) p->steps_increase = 0;
    p->last_denoise_step = step;
  }
  return 0;
}

/* The demo model to PNG frames in `frames_dir` (ending in '/'), 64x48, 5 frames, 2 steps. */
int x2v_c_smoke_generate(const char* frames_dir, char* msg, size_t msg_size) {
  struct smoke_progress p;
  x2v_options* o;
  x2v_result* r = NULL;
  char err[256];
  int rc;
  size_t i;
  int saw_denoise = 0;

  memset(&p, 0, sizeof p);
  p.steps_increase = 1;
  SMOKE_CHECK(strlen(x2v_version()) > 0);
  o = x2v_options_new();
  SMOKE_CHECK(o != NULL);
  SMOKE_CHECK(x2v_options_set_int(o, "demo", 1) == X2V_OK);
  SMOKE_CHECK(x2v_options_set_string(o, "size", "64x48") == X2V_OK);
  SMOKE_CHECK(x2v_options_set_int(o, "frames", 5) == X2V_OK);
  SMOKE_CHECK(x2v_options_set_string(o, "steps", "2") == X2V_OK);
  SMOKE_CHECK(x2v_options_set_double(o, "guide_scale", 4.0) == X2V_OK);
  SMOKE_CHECK(x2v_options_set_int(o, "seed", 11) == X2V_OK);
  SMOKE_CHECK(x2v_options_set_string(o, "output", frames_dir) == X2V_OK);
  /* A key that does not exist is refused by the setter. */
  SMOKE_CHECK(x2v_options_set_int(o, "no_such_option", 1) == X2V_ERR_INVALID_ARGUMENT);
  SMOKE_CHECK(strstr(x2v_last_error(), "no_such_option") != NULL);

  rc = x2v_generate(o, smoke_progress_cb, &p, &r, err, sizeof err);
  SMOKE_CHECK(rc == X2V_OK);
  SMOKE_CHECK(err[0] == '\0');
  SMOKE_CHECK(r != NULL);
  SMOKE_CHECK(x2v_result_output_count(r) == 1);
  SMOKE_CHECK(strcmp(x2v_result_output(r, 0), frames_dir) == 0);
  SMOKE_CHECK(x2v_result_output(r, 1) == NULL);
  SMOKE_CHECK(x2v_result_width(r) == 64 && x2v_result_height(r) == 48);
  SMOKE_CHECK(x2v_result_frames(r) == 5 && x2v_result_fps(r) == 16);
  SMOKE_CHECK(x2v_result_seed(r) == 11);
  SMOKE_CHECK(x2v_result_peak_host_bytes(r) > 0);
  for (i = 0; i < x2v_result_stage_count(r); ++i) {
    if (strcmp(x2v_result_stage_name(r, i), "denoise") == 0) saw_denoise = 1;
    SMOKE_CHECK(x2v_result_stage_seconds(r, i) >= 0);
  }
  SMOKE_CHECK(saw_denoise);
  SMOKE_CHECK(x2v_result_stage_name(r, x2v_result_stage_count(r)) == NULL);
  SMOKE_CHECK(p.steps == 2 && p.steps_increase && p.last_denoise_step == 2);
  SMOKE_CHECK(p.stage_ends > 0);
  x2v_result_free(r);
  x2v_options_free(o);
  return 0;
}

/* A request the pipeline refuses: the status code, the message in the buffer and in
 * x2v_last_error, no result. */
int x2v_c_smoke_refused(const char* output, char* msg, size_t msg_size) {
  x2v_options* o = x2v_options_new();
  x2v_result* r = (x2v_result*)&msg; /* must be reset to NULL */
  char err[512];
  int rc;

  SMOKE_CHECK(o != NULL);
  SMOKE_CHECK(x2v_options_set_json(o, "{\"demo\": true, \"size\": \"64x48\", \"frames\": 6, \"steps\": 2}") ==
              X2V_OK);
  SMOKE_CHECK(x2v_options_set_string(o, "output", output) == X2V_OK);
  rc = x2v_generate(o, NULL, NULL, &r, err, sizeof err);
  SMOKE_CHECK(rc == X2V_ERR_INVALID_ARGUMENT);
  SMOKE_CHECK(r == NULL);
  SMOKE_CHECK(strstr(err, "4n+1") != NULL);
  SMOKE_CHECK(strcmp(err, x2v_last_error()) == 0);
  SMOKE_CHECK(strcmp(x2v_status_name(rc), "invalid argument") == 0);
  x2v_options_free(o);
  x2v_options_free(NULL);
  x2v_result_free(NULL);
  return 0;
}
