/* Sign access units with the reference library as its GStreamer signer plugin does.
 * in:  per AU: u32 nal_count, i64 timestamp (100 ns since 1601), then nal_count x (u32 len, nal)
 * out: same layout, with the SEIs prepended at the head of an AU when the library hands
 *      them out (peek = first NAL of the AU), and a final SEI-only AU after
 *      onvif_media_signing_set_end_of_stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "onvif_media_signing_common.h"
#include "onvif_media_signing_signer.h"
static unsigned char *slurp(const char *p, size_t *n) {
  FILE *f = fopen(p, "rb"); if (!f) { perror(p); exit(2); }
  fseek(f, 0, SEEK_END); *n = ftell(f); fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1); if (fread(b, 1, *n, f) != *n) exit(2); b[*n] = 0; fclose(f); return b;
}
static uint32_t rd32(const unsigned char *p) { return ((uint32_t)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }
static void wr32(FILE *f, uint32_t v) { unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v}; fwrite(b, 1, 4, f); }
static void wr64(FILE *f, int64_t v) { for (int i = 7; i >= 0; i--) fputc((int)((uint64_t)v >> (8 * i)) & 0xff, f); }
typedef struct { uint8_t *d; size_t n; } blob;
static int take_seis(onvif_media_signing_t *oms, const uint8_t *peek, size_t peek_n, blob *out, int max) {
  int k = 0; uint8_t *sei; size_t sz; unsigned pend;
  while (onvif_media_signing_get_sei(oms, &sei, &sz, NULL, peek, peek_n, &pend) == OMS_OK && sz > 0 && k < max) {
    out[k].d = sei + 4; out[k].n = sz - 4; k++;  /* the library writes a 4-byte start code */
  }
  return k;
}
int main(int argc, char **argv) {
  if (argc < 7) { fprintf(stderr, "usage: codec key chain lowbitrate certsei in out\n"); return 2; }
  onvif_media_signing_t *oms = onvif_media_signing_create(atoi(argv[1]) ? OMS_CODEC_H265 : OMS_CODEC_H264);
  size_t kn, cn, n; unsigned char *key = slurp(argv[2], &kn), *chain = slurp(argv[3], &cn);
  if (onvif_media_signing_set_signing_key_pair(oms, (char *)key, kn, (char *)chain, cn, false) != OMS_OK) return 3;
  onvif_media_signing_vendor_info_t vi = {0};
  strcpy(vi.firmware_version, onvif_media_signing_get_version()); strcpy(vi.serial_number, "N/A");
  strcpy(vi.manufacturer, "Media Signing Framework");
  onvif_media_signing_set_vendor_info(oms, &vi);
  onvif_media_signing_set_low_bitrate_mode(oms, atoi(argv[4]) != 0);
  int certsei = atoi(argv[5]);
  if (onvif_media_signing_set_use_certificate_sei(oms, certsei != 0) != OMS_OK) return 4;
  unsigned char *d = slurp(argv[6], &n);
  FILE *out = fopen(argv[7], "wb");
  size_t pos = 0; int frame = 0; int64_t last_ts = 0; blob seis[16];
  while (pos < n) {
    uint32_t count = rd32(d + pos); pos += 4;
    int64_t ts = 0; for (int i = 0; i < 8; i++) ts = (ts << 8) | d[pos + i]; pos += 8; last_ts = ts;
    if (frame++ == 0 && certsei) { if (onvif_media_signing_generate_certificate_sei(oms) != OMS_OK) return 5; }
    uint32_t first_len = rd32(d + pos);
    int k = take_seis(oms, d + pos + 4, first_len, seis, 16);
    wr32(out, count + k); wr64(out, ts);
    for (int i = 0; i < k; i++) { wr32(out, (uint32_t)seis[i].n); fwrite(seis[i].d, 1, seis[i].n, out); }
    for (uint32_t i = 0; i < count; i++) {
      uint32_t len = rd32(d + pos); pos += 4;
      if (onvif_media_signing_add_nalu_for_signing(oms, d + pos, len, ts) != OMS_OK) return 6;
      wr32(out, len); fwrite(d + pos, 1, len, out); pos += len;
    }
  }
  if (onvif_media_signing_set_end_of_stream(oms) != OMS_OK) return 7;
  int k = take_seis(oms, NULL, 0, seis, 16);
  wr32(out, k); wr64(out, last_ts);
  for (int i = 0; i < k; i++) { wr32(out, (uint32_t)seis[i].n); fwrite(seis[i].d, 1, seis[i].n, out); }
  fclose(out);
  onvif_media_signing_free(oms);
  return 0;
}
