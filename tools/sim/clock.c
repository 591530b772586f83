/* SPDX-License-Identifier: MIT */
#include "clock.h"

#include <glib.h>

struct sim_event {
    uint64_t due_usec;
    uint64_t seq;      /* scheduling order: ties run first come, first served */
    bool cancelled;
    sim_event_fn *fn;
    void *data;
    void (*discard)(void *data); /* for data never handed to fn */
};

/* A binary min-heap on (due_usec, seq).  Cancelled events stay in it
 * until they reach the top. */
struct sim_clock {
    uint64_t now_usec;
    uint64_t next_seq;
    GPtrArray *heap;
};

static bool earlier(const sim_event *a, const sim_event *b)
{
    return a->due_usec < b->due_usec || (a->due_usec == b->due_usec && a->seq < b->seq);
}

static sim_event *heap_at(const sim_clock *clock, guint i)
{
    return g_ptr_array_index(clock->heap, i);
}

static void heap_swap(sim_clock *clock, guint i, guint j)
{
    gpointer tmp = clock->heap->pdata[i];

    clock->heap->pdata[i] = clock->heap->pdata[j];
    clock->heap->pdata[j] = tmp;
}

static void heap_push(sim_clock *clock, sim_event *event)
{
    guint i = clock->heap->len;

    g_ptr_array_add(clock->heap, event);
    while (i > 0 && earlier(heap_at(clock, i), heap_at(clock, (i - 1) / 2))) {
        heap_swap(clock, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static sim_event *heap_pop(sim_clock *clock)
{
    sim_event *top = heap_at(clock, 0);
    guint i = 0;

    clock->heap->pdata[0] = clock->heap->pdata[clock->heap->len - 1];
    g_ptr_array_set_size(clock->heap, clock->heap->len - 1);
    for (;;) {
        guint left = 2 * i + 1, right = left + 1, smallest = i;

        if (left < clock->heap->len && earlier(heap_at(clock, left), heap_at(clock, smallest)))
            smallest = left;
        if (right < clock->heap->len && earlier(heap_at(clock, right), heap_at(clock, smallest)))
            smallest = right;
        if (smallest == i)
            return top;
        heap_swap(clock, i, smallest);
        i = smallest;
    }
}

static void event_free_unrun(gpointer data)
{
    sim_event *event = data;

    if (event->discard != NULL)
        event->discard(event->data);
    g_free(event);
}

/* Drops cancelled events from the top, so that the top is a live one. */
static const sim_event *live_top(sim_clock *clock)
{
    while (clock->heap->len > 0 && heap_at(clock, 0)->cancelled)
        event_free_unrun(heap_pop(clock));
    return clock->heap->len > 0 ? heap_at(clock, 0) : NULL;
}

sim_clock *sim_clock_new(uint64_t start_usec)
{
    sim_clock *clock = g_new0(sim_clock, 1);

    clock->now_usec = start_usec;
    clock->heap = g_ptr_array_new();
    return clock;
}

void sim_clock_free(sim_clock *clock)
{
    if (clock == NULL)
        return;
    for (guint i = 0; i < clock->heap->len; i++)
        event_free_unrun(heap_at(clock, i));
    g_ptr_array_unref(clock->heap);
    g_free(clock);
}

uint64_t sim_clock_now(const sim_clock *clock)
{
    return clock->now_usec;
}

sim_event *sim_clock_at(sim_clock *clock, uint64_t usec, sim_event_fn *fn, void *data)
{
    sim_event *event = g_new0(sim_event, 1);

    event->due_usec = usec > clock->now_usec ? usec : clock->now_usec;
    event->seq = clock->next_seq++;
    event->fn = fn;
    event->data = data;
    heap_push(clock, event);
    return event;
}

sim_event *sim_clock_after(sim_clock *clock, uint64_t delay_usec, sim_event_fn *fn, void *data)
{
    return sim_clock_at(clock, clock->now_usec + delay_usec, fn, data);
}

sim_event *sim_clock_after_full(sim_clock *clock, uint64_t delay_usec, sim_event_fn *fn,
                                void *data, void (*discard)(void *data))
{
    sim_event *event = sim_clock_after(clock, delay_usec, fn, data);

    event->discard = discard;
    return event;
}

void sim_clock_cancel(sim_clock *clock, sim_event *event)
{
    (void)clock;
    event->cancelled = true;
}

bool sim_clock_next_instant(sim_clock *clock, uint64_t *usec)
{
    const sim_event *top = live_top(clock);

    if (top == NULL)
        return false;
    *usec = top->due_usec;
    return true;
}

bool sim_clock_run_iteration(sim_clock *clock)
{
    const sim_event *top = live_top(clock);
    uint64_t first_new_seq = clock->next_seq;

    if (top == NULL)
        return false;
    clock->now_usec = top->due_usec;
    while ((top = live_top(clock)) != NULL && top->due_usec == clock->now_usec &&
           top->seq < first_new_seq) {
        sim_event *event = heap_pop(clock);

        event->fn(event->data);
        g_free(event);
    }
    return true;
}
