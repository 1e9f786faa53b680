/*  batch — see cv_batch.h. */
#include "cv_batch.h"

#include <stdlib.h>
#include <string.h>

cv_batch_t *cv_batch_new(void)
{
    return calloc(1, sizeof(cv_batch_t));
}

void cv_batch_destroy(cv_batch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cv_batch_clear(*self_p);
    free((*self_p)->items);
    free((*self_p)->meta);
    free(*self_p);
    *self_p = NULL;
}

long cv_batch_push(cv_batch_t *self)
{
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 256;
        cv_store_item_t *items = realloc(self->items, cap * sizeof *items);
        if (!items)
            return -1;
        self->items = items;
        cv_batch_meta_t *meta = realloc(self->meta, cap * sizeof *meta);
        if (!meta)
            return -1;
        self->meta = meta;
        self->cap = cap;
    }
    size_t i = self->n++;
    memset(&self->items[i], 0, sizeof self->items[i]);
    memset(&self->meta[i], 0, sizeof self->meta[i]);
    return (long) i;
}

void cv_batch_clear(cv_batch_t *self)
{
    for (size_t i = 0; i < self->n; i++) {
        cv_store_item_release(&self->items[i]);
        json_decref(self->items[i].event);
        json_decref(self->items[i].record);
        zframe_destroy(&self->meta[i].frame);
    }
    self->n = 0;
    self->bytes = 0;
    self->opened_ms = 0;
}
