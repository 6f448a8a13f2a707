/* Validate NAL units with the reference library, as its validator app does (container
 * mode: NAL units without start code or length prefix), printing every report and the
 * accumulated result. in: u32be length + NAL unit, repeated, in decode order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "onvif_media_signing_common.h"
#include "onvif_media_signing_validator.h"
static unsigned char *slurp(const char *p, size_t *n) {
  FILE *f = fopen(p, "rb"); if (!f) { perror(p); exit(2); }
  fseek(f, 0, SEEK_END); *n = ftell(f); fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1); if (fread(b, 1, *n, f) != *n) exit(2); b[*n] = 0; fclose(f); return b;
}
int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: codec(0|1) ca.pem nals.bin\n"); return 2; }
  onvif_media_signing_t *oms = onvif_media_signing_create(atoi(argv[1]) ? OMS_CODEC_H265 : OMS_CODEC_H264);
  size_t n; unsigned char *ca = slurp(argv[2], &n);
  if (onvif_media_signing_set_trusted_certificate(oms, (char *)ca, n) != OMS_OK) { fprintf(stderr, "ca\n"); return 2; }
  unsigned char *d = slurp(argv[3], &n);
  size_t pos = 0; int reports = 0;
  while (pos + 4 <= n) {
    uint32_t len = (d[pos] << 24) | (d[pos+1] << 16) | (d[pos+2] << 8) | d[pos+3]; pos += 4;
    onvif_media_signing_authenticity_t *a = NULL;
    MediaSigningReturnCode rc = onvif_media_signing_add_nalu_and_authenticate(oms, d + pos, len, &a);
    if (rc != OMS_OK) printf("error %d\n", rc);
    if (a) {
      onvif_media_signing_latest_validation_t *l = &a->latest_validation;
      printf("report authenticity=%d provenance=%d expected=%d received=%d pending=%d nalus=%s validation=%s\n",
        l->authenticity, l->provenance, l->number_of_expected_hashable_nalus, l->number_of_received_hashable_nalus,
        l->number_of_pending_hashable_nalus, l->nalu_str, l->validation_str);
      reports++;
      onvif_media_signing_authenticity_report_free(a);
    }
    pos += len;
  }
  onvif_media_signing_authenticity_t *a = onvif_media_signing_get_authenticity_report(oms);
  onvif_media_signing_accumulated_validation_t *c = &a->accumulated_validation;
  printf("accumulated authenticity=%d provenance=%d received_nalus=%u validated_nalus=%u pending_nalus=%u frames=%u validated_frames=%u pending_frames=%u reports=%d\n",
    c->authenticity, c->provenance, c->number_of_received_nalus, c->number_of_validated_nalus, c->number_of_pending_nalus,
    c->number_of_received_frames, c->number_of_validated_frames, c->number_of_pending_frames, reports);
  onvif_media_signing_authenticity_report_free(a);
  onvif_media_signing_free(oms);
  return 0;
}
