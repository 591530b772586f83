/* SPDX-License-Identifier: MIT */
#include "samples.h"

#include <errno.h>
#include <stdio.h>

GArray *sim_samples_new(void)
{
    return g_array_new(FALSE, FALSE, sizeof(sim_sample));
}

bool sim_samples_write_csv(const GArray *samples, const char *path, GError **error)
{
    FILE *out = fopen(path, "w");
    bool ok;

    if (out == NULL) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        return false;
    }
    fprintf(out, "time,process_count,process_avail,queued,busy_slots\n");
    for (guint i = 0; i < samples->len; i++) {
        const sim_sample *s = &g_array_index(samples, sim_sample, i);
        char seconds[G_ASCII_DTOSTR_BUF_SIZE];

        g_ascii_formatd(seconds, sizeof(seconds), "%.3f", s->seconds);
        fprintf(out, "%s,%u,%u,%u,%u\n", seconds, s->processes, s->available, s->queued, s->busy);
    }
    ok = !ferror(out);
    if (fclose(out) != 0 || !ok) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s: write failed", path);
        return false;
    }
    return true;
}
