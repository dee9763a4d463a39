/* validate.c: what makes a submitted message acceptable, for the HTTP post and the
 * message.submitted handler alike. It answers a fault, never a text: each edge says
 * it in its own words (routes_messages.c as an HTTP status and text, messages.c as
 * message.rejected's code and message). */
#include <string.h>
#include "chatd/text.h"
#include "message_internal.h"

const char MSG_NOT_A_STRING[] = "";

static const enum msg_fault body_text[] = {
    [TEXT_OK] = MSG_VALID, [TEXT_NOT_UTF8] = MSG_FAULT_BODY_UTF8,
    [TEXT_CONTROL] = MSG_FAULT_BODY_CONTROL, [TEXT_BIDI] = MSG_FAULT_BODY_BIDI,
};
static const enum msg_fault cmid_text[] = {
    [TEXT_OK] = MSG_VALID, [TEXT_NOT_UTF8] = MSG_FAULT_CMID_UTF8,
    [TEXT_CONTROL] = MSG_FAULT_CMID_CONTROL, [TEXT_BIDI] = MSG_FAULT_CMID_BIDI,
};

static enum msg_fault check_body(const struct msg_state *st, const char *body)
{
    if (!body || body == MSG_NOT_A_STRING)
        return MSG_FAULT_BODY_TYPE;
    size_t n = strlen(body);
    if (n == 0)
        return MSG_FAULT_BODY_EMPTY;
    if (n > (size_t)st->max_body_bytes)
        return MSG_FAULT_BODY_LONG;
    /* A body is text of several lines: tab and newline are its only controls. */
    return body_text[text_check(body, n, TEXT_ALLOW_LINES)];
}

static enum msg_fault check_client_id(const char *cmid)
{
    if (!cmid)
        return MSG_VALID;            /* absent or null: no de-duplication */
    if (cmid == MSG_NOT_A_STRING)
        return MSG_FAULT_CMID_TYPE;
    size_t n = strlen(cmid);
    if (n == 0 || n > MSG_CLIENT_ID_MAX)
        return MSG_FAULT_CMID_LENGTH;
    return cmid_text[text_check(cmid, n, 0)];
}

enum msg_fault msg_validate(const struct msg_state *st, int64_t room_id, const char *body,
                            const char *client_msg_id)
{
    enum msg_fault f;
    if (room_id <= 0)
        return MSG_FAULT_ROOM_ID;
    if ((f = check_body(st, body)) != MSG_VALID)
        return f;
    return check_client_id(client_msg_id);
}

const char *msg_fault_text(enum msg_fault f)
{
    static const char *const body[] = TEXT_FAULT_MESSAGES("body", " other than tab and newline");
    static const char *const cmid[] = TEXT_FAULT_MESSAGES("client_msg_id", "");
    switch (f) {
    case MSG_VALID:              return NULL;
    case MSG_FAULT_ROOM_ID:      return "room_id must be a positive integer";
    case MSG_FAULT_BODY_TYPE:    return "body must be a string";
    case MSG_FAULT_BODY_EMPTY:   return "body must not be empty";
    case MSG_FAULT_BODY_LONG:    return "body is too long";
    case MSG_FAULT_BODY_UTF8:    return body[TEXT_NOT_UTF8];
    case MSG_FAULT_BODY_CONTROL: return body[TEXT_CONTROL];
    case MSG_FAULT_BODY_BIDI:    return body[TEXT_BIDI];
    case MSG_FAULT_CMID_TYPE:    return "client_msg_id must be a string";
    case MSG_FAULT_CMID_LENGTH:  return "client_msg_id must be 1 to 128 bytes";
    case MSG_FAULT_CMID_UTF8:    return cmid[TEXT_NOT_UTF8];
    case MSG_FAULT_CMID_CONTROL: return cmid[TEXT_CONTROL];
    case MSG_FAULT_CMID_BIDI:    return cmid[TEXT_BIDI];
    case MSG_FAULT__COUNT:       break;
    }
    return "invalid message";
}
