#ifndef ATTNAX_CMPI_SHIM_H
#define ATTNAX_CMPI_SHIM_H
/*
 * Swift cannot import OpenMPI's predefined handles: they are macros that take
 * the address of global objects or cast integers to pointers. Each one that
 * AttnaxDist needs is exposed here as a `static inline` getter. Only the
 * AttnaxDist module imports CMPI.
 */
#include <mpi.h>

/* Communicators. */
static inline MPI_Comm attnax_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm attnax_comm_self(void) { return MPI_COMM_SELF; }
static inline MPI_Comm attnax_comm_null(void) { return MPI_COMM_NULL; }

/* Datatypes. */
static inline MPI_Datatype attnax_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype attnax_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype attnax_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype attnax_long_long(void) { return MPI_LONG_LONG; }

/* Reduction operations. */
static inline MPI_Op attnax_op_sum(void) { return MPI_SUM; }
static inline MPI_Op attnax_op_max(void) { return MPI_MAX; }
static inline MPI_Op attnax_op_min(void) { return MPI_MIN; }

/* Buffers, statuses, requests. */
static inline void *attnax_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *attnax_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *attnax_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline MPI_Request attnax_request_null(void) { return MPI_REQUEST_NULL; }

/* Error handlers. */
static inline MPI_Errhandler attnax_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Errhandler attnax_errors_are_fatal(void) { return MPI_ERRORS_ARE_FATAL; }

/* Integer constants (macros are not always imported as Swift constants). */
static inline int attnax_any_source(void) { return MPI_ANY_SOURCE; }
static inline int attnax_any_tag(void) { return MPI_ANY_TAG; }
static inline int attnax_undefined(void) { return MPI_UNDEFINED; }
static inline int attnax_success(void) { return MPI_SUCCESS; }
static inline int attnax_err_truncate(void) { return MPI_ERR_TRUNCATE; }
static inline int attnax_err_other(void) { return MPI_ERR_OTHER; }
static inline int attnax_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int attnax_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int attnax_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline int attnax_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int attnax_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int attnax_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }

/* MPI_Status fields, read without depending on the struct's layout in Swift. */
static inline int attnax_status_source(const MPI_Status *s) { return s->MPI_SOURCE; }
static inline int attnax_status_tag(const MPI_Status *s) { return s->MPI_TAG; }
static inline int attnax_status_error(const MPI_Status *s) { return s->MPI_ERROR; }

#endif
