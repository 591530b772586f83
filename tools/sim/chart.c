/* SPDX-License-Identifier: MIT */
#include "chart.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "samples.h"

#define WIDTH 760
#define HEIGHT 320
#define LEFT 48
#define RIGHT 16
#define TOP 52
#define BOTTOM 36
#define PLOT_WIDTH (WIDTH - LEFT - RIGHT)
#define PLOT_HEIGHT (HEIGHT - TOP - BOTTOM)
#define TICKS_MAX 6

typedef struct series {
    const char *label;
    const char *colour;
    const char *style;     /* extra stroke attributes */
    unsigned (*value)(const sim_sample *sample);
} series;

static unsigned processes_of(const sim_sample *s) { return s->processes; }
static unsigned available_of(const sim_sample *s) { return s->available; }
static unsigned queued_of(const sim_sample *s) { return s->queued; }
static unsigned busy_of(const sim_sample *s) { return s->busy; }

/* Drawn in this order, so the process count ends on top. */
static const series all_series[] = {
    { "busy slots", "#7f7f7f", "stroke-width=\"1\" stroke-dasharray=\"3 2\"", busy_of },
    { "queued", "#d62728", "stroke-width=\"1.5\"", queued_of },
    { "available", "#2ca02c", "stroke-width=\"1.5\"", available_of },
    { "processes", "#1f77b4", "stroke-width=\"2\"", processes_of },
};

/* 1, 2 or 5 times a power of ten, so that [0, max] has at most
 * TICKS_MAX steps. */
static double tick_step(double max)
{
    double magnitude = pow(10, floor(log10(max / TICKS_MAX)));
    const double multiples[] = { 1, 2, 5, 10 };

    for (size_t i = 0; i < G_N_ELEMENTS(multiples); i++) {
        if (max / (multiples[i] * magnitude) <= TICKS_MAX)
            return multiples[i] * magnitude;
    }
    return 10 * magnitude;
}

static void write_escaped(FILE *out, const char *text)
{
    char *escaped = g_markup_escape_text(text, -1);

    fputs(escaped, out);
    g_free(escaped);
}

static double x_of(double seconds, double x_max)
{
    return LEFT + seconds / x_max * PLOT_WIDTH;
}

static double y_of(double value, double y_max)
{
    return TOP + PLOT_HEIGHT - value / y_max * PLOT_HEIGHT;
}

static void write_axes(FILE *out, double x_max, double y_max)
{
    double x_step = tick_step(x_max), y_step = tick_step(y_max);

    fprintf(out, "<g font-size=\"11\" fill=\"#444\" stroke=\"none\">\n");
    for (double y = 0; y <= y_max + 1e-9; y += y_step) {
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n",
                LEFT, y_of(y, y_max), WIDTH - RIGHT, y_of(y, y_max));
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", LEFT - 6,
                y_of(y, y_max) + 4, y);
    }
    for (double x = 0; x <= x_max + 1e-9; x += x_step) {
        fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#999\"/>\n",
                x_of(x, x_max), TOP + PLOT_HEIGHT, x_of(x, x_max), TOP + PLOT_HEIGHT + 4);
        fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                x_of(x, x_max), TOP + PLOT_HEIGHT + 16, x);
    }
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">seconds</text>\n", WIDTH - RIGHT,
            HEIGHT - 4);
    fprintf(out, "</g>\n");
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                 "stroke=\"#999\"/>\n",
            LEFT, TOP, PLOT_WIDTH, PLOT_HEIGHT);
}

/* A constant run needs only its two ends, which keeps long quiet
 * stretches from filling the file. */
static void write_series(FILE *out, const series *line, const GArray *samples, double x_max,
                         double y_max)
{
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" %s stroke-linejoin=\"round\" points=\"",
            line->colour, line->style);
    for (guint i = 0; i < samples->len; i++) {
        const sim_sample *s = &g_array_index(samples, sim_sample, i);
        unsigned value = line->value(s);
        bool same_as_before = i > 0 && line->value(s - 1) == value;
        bool same_as_after = i + 1 < samples->len && line->value(s + 1) == value;

        if (same_as_before && same_as_after)
            continue;
        fprintf(out, "%.1f,%.1f ", x_of(s->seconds, x_max), y_of(value, y_max));
    }
    fprintf(out, "\"/>\n");
}

static void write_legend(FILE *out)
{
    double x = WIDTH - RIGHT - 4;

    fprintf(out, "<g font-size=\"11\" fill=\"#333\">\n");
    for (size_t i = 0; i < G_N_ELEMENTS(all_series); i++) {
        const series *line = &all_series[i];

        x -= 96;
        fprintf(out, "<line x1=\"%.0f\" y1=\"%d\" x2=\"%.0f\" y2=\"%d\" stroke=\"%s\" %s/>\n", x,
                TOP - 10, x + 18, TOP - 10, line->colour, line->style);
        fprintf(out, "<text x=\"%.0f\" y=\"%d\">%s</text>\n", x + 22, TOP - 6, line->label);
    }
    fprintf(out, "</g>\n");
}

static void write_chart(FILE *out, const sim_chart *chart, const GArray *samples)
{
    double x_max = chart->seconds > 0 ? chart->seconds : 1;
    unsigned data_max = 1;
    double y_max;
    bool show_limit;

    for (guint i = 0; i < samples->len; i++) {
        const sim_sample *s = &g_array_index(samples, sim_sample, i);
        for (size_t j = 0; j < G_N_ELEMENTS(all_series); j++)
            data_max = MAX(data_max, all_series[j].value(s));
    }
    /* The limit is worth showing when the data comes near it. */
    show_limit = chart->process_limit > 0 && chart->process_limit <= data_max * 1.5;
    y_max = show_limit ? MAX(data_max, chart->process_limit) : data_max;
    y_max = ceil(y_max * 1.05 / tick_step(y_max * 1.05)) * tick_step(y_max * 1.05);

    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
            WIDTH, HEIGHT, WIDTH, HEIGHT);
    fprintf(out, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(out, "<text x=\"%d\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", LEFT);
    write_escaped(out, chart->title);
    fprintf(out, "</text>\n");
    if (chart->subtitle != NULL) {
        fprintf(out, "<text x=\"%d\" y=\"34\" font-size=\"11\" fill=\"#555\">", LEFT);
        write_escaped(out, chart->subtitle);
        fprintf(out, "</text>\n");
    }
    write_axes(out, x_max, y_max);
    if (show_limit) {
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#1f77b4\" "
                     "stroke-dasharray=\"6 4\" stroke-width=\"1\"/>\n",
                LEFT, y_of(chart->process_limit, y_max), WIDTH - RIGHT,
                y_of(chart->process_limit, y_max));
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" fill=\"#1f77b4\" "
                     "text-anchor=\"end\">process_limit</text>\n",
                WIDTH - RIGHT - 4, y_of(chart->process_limit, y_max) - 3);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(all_series); i++)
        write_series(out, &all_series[i], samples, x_max, y_max);
    write_legend(out);
    fprintf(out, "</svg>\n");
}

bool sim_chart_write(const sim_chart *chart, const GArray *samples, const char *path,
                     GError **error)
{
    FILE *out = fopen(path, "w");
    bool ok;

    if (out == NULL) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        return false;
    }
    write_chart(out, chart, samples);
    ok = !ferror(out);
    if (fclose(out) != 0 || !ok) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s: write failed", path);
        return false;
    }
    return true;
}
