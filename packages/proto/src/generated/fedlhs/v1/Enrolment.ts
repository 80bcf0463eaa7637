// Original file: /work/main/proto/fedlhs/v1/enrolment.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { EnrolRequest as _fedlhs_v1_EnrolRequest, EnrolRequest__Output as _fedlhs_v1_EnrolRequest__Output } from '../../fedlhs/v1/EnrolRequest.js';
import type { EnrolResponse as _fedlhs_v1_EnrolResponse, EnrolResponse__Output as _fedlhs_v1_EnrolResponse__Output } from '../../fedlhs/v1/EnrolResponse.js';

export interface EnrolmentClient extends grpc.Client {
  /**
   * Trades a join token for a node credential. This is the only unauthenticated call.
   * 
   * Errors:
   * - INVALID_ARGUMENT: join_token or site_name empty or malformed.
   * - UNAUTHENTICATED: the token is unknown, has expired, or was already used. The message
   * says which. A token is consumed by the first successful Enrol, so retrying a lost
   * response needs a new token.
   * - PERMISSION_DENIED: site_name differs from the site the token was issued for.
   */
  Enrol(argument: _fedlhs_v1_EnrolRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_EnrolResponse__Output>): grpc.ClientUnaryCall;
  Enrol(argument: _fedlhs_v1_EnrolRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_EnrolResponse__Output>): grpc.ClientUnaryCall;
  Enrol(argument: _fedlhs_v1_EnrolRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_EnrolResponse__Output>): grpc.ClientUnaryCall;
  Enrol(argument: _fedlhs_v1_EnrolRequest, callback: grpc.requestCallback<_fedlhs_v1_EnrolResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Trades a join token for a node credential. This is the only unauthenticated call.
   * 
   * Errors:
   * - INVALID_ARGUMENT: join_token or site_name empty or malformed.
   * - UNAUTHENTICATED: the token is unknown, has expired, or was already used. The message
   * says which. A token is consumed by the first successful Enrol, so retrying a lost
   * response needs a new token.
   * - PERMISSION_DENIED: site_name differs from the site the token was issued for.
   */
  enrol(argument: _fedlhs_v1_EnrolRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_EnrolResponse__Output>): grpc.ClientUnaryCall;
  enrol(argument: _fedlhs_v1_EnrolRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedlhs_v1_EnrolResponse__Output>): grpc.ClientUnaryCall;
  enrol(argument: _fedlhs_v1_EnrolRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedlhs_v1_EnrolResponse__Output>): grpc.ClientUnaryCall;
  enrol(argument: _fedlhs_v1_EnrolRequest, callback: grpc.requestCallback<_fedlhs_v1_EnrolResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface EnrolmentHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Trades a join token for a node credential. This is the only unauthenticated call.
   * 
   * Errors:
   * - INVALID_ARGUMENT: join_token or site_name empty or malformed.
   * - UNAUTHENTICATED: the token is unknown, has expired, or was already used. The message
   * says which. A token is consumed by the first successful Enrol, so retrying a lost
   * response needs a new token.
   * - PERMISSION_DENIED: site_name differs from the site the token was issued for.
   */
  Enrol: grpc.handleUnaryCall<_fedlhs_v1_EnrolRequest__Output, _fedlhs_v1_EnrolResponse>;
  
}

export interface EnrolmentDefinition extends grpc.ServiceDefinition {
  Enrol: MethodDefinition<_fedlhs_v1_EnrolRequest, _fedlhs_v1_EnrolResponse, _fedlhs_v1_EnrolRequest__Output, _fedlhs_v1_EnrolResponse__Output>
}
